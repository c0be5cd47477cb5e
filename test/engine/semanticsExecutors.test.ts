/** The engine's acceptance set with jobs on executors (semanticsSuite.ts): the same suite, the same results. */
import { semanticsSuite } from './semanticsSuite.js';

semanticsSuite({ TOIL_KUBERNETES_EXECUTORS: 'true' });
