// `node --import ./test/s3/ts-register.mjs file.ts`: see ts-hooks.mjs.
import { register } from 'node:module';
register(new URL('./ts-hooks.mjs', import.meta.url));
