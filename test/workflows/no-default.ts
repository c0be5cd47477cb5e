/** A workflow module without a default export. */
import { defineJob } from 'toil-ts';

export const j = defineJob('j', async () => 1);
