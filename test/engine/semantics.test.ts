/** The engine's acceptance set with a batch job per job (semanticsSuite.ts). */
import { semanticsSuite } from './semanticsSuite.js';

semanticsSuite({});
