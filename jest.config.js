import { createDefaultEsmPreset } from 'ts-jest';

/** @type {import('jest').Config} */
export default {
  ...createDefaultEsmPreset({ tsconfig: 'tsconfig.json' }),
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 60000,
  // three suites at once on two cores: many of them spend much of their time waiting (naps, lease
  // periods, watch timeouts, pod start-up), and a third keeps the cores busy meanwhile
  maxWorkers: 3,
  globalSetup: '<rootDir>/test/globalSetup.js',
};
