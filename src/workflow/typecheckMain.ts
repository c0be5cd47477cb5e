/**
 * Entry point of the type checker's own process (see typecheck.ts): checks the workflow named
 * by its argument and sends the result to its parent.
 */
import { checkNow, type CheckResult, type TypeCheckInput } from './typecheck.js';

const input = JSON.parse(process.argv[2] ?? '{}') as TypeCheckInput;
const result: CheckResult = await checkNow(input);
process.send?.(result, () => process.exit(0));
