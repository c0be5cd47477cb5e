/** Reading the workflow argument: paths and file: URLs stay local; other URLs are checked before any fetch. */
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { obtainWorkflow } from '../../src/workflow/workflowSource.js';

describe('obtainWorkflow', () => {
  it('keeps a path as given and turns a file: URL into its path, fetching nothing', async () => {
    const p = await obtainWorkflow('examples/helloworld.ts');
    expect(p).toMatchObject({ file: 'examples/helloworld.ts', name: 'examples/helloworld.ts' });
    expect(p.fetched).toBeUndefined();
    const abs = path.resolve('examples/helloworld.ts');
    const u = await obtainWorkflow(`file://${abs}`);
    expect(u).toMatchObject({ file: abs, name: `file://${abs}` });
    expect(u.fetched).toBeUndefined();
  });

  it.each([
    ['ftp://host/wf.ts', /unsupported workflow URL 'ftp:\/\/host\/wf\.ts'/],
    ['gs://bucket/wf.ts', /unsupported workflow URL/],
    ['https://', /invalid workflow URL 'https:\/\/'/],
    ['https://host/page.html', /workflow URL must name a \.ts or \.js file: https:\/\/host\/page\.html/],
    ['https://u:secret@host/flows/?token=abc', /workflow URL must name a \.ts or \.js file: https:\/\/host\/flows\/\?…$/],
    ['file://remote-host/wf.ts', /invalid workflow URL 'file:\/\/remote-host\/wf\.ts'/],
  ])('refuses %s before fetching', async (arg, message) => {
    await expect(obtainWorkflow(arg)).rejects.toThrow(message);
  });
});
