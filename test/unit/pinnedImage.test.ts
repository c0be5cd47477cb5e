import { describe, expect, it } from '@jest/globals';
import { pinnedImage } from '../../src/batch/kubeCluster.js';

const D = 'a'.repeat(64);

describe("the worker image, pinned to the leader's digest", () => {
  it('takes the digest the kubelet ran, whatever the tag or registry port', () => {
    expect(pinnedImage('toil-ts:0.1.0', `docker.io/library/toil-ts@sha256:${D}`)).toEqual({ image: `toil-ts@sha256:${D}` });
    expect(
      pinnedImage('registry.example:5000/lab/toil-ts:latest', `docker-pullable://registry.example:5000/lab/toil-ts@sha256:${D}`),
    ).toEqual({
      image: `registry.example:5000/lab/toil-ts@sha256:${D}`,
    });
    expect(pinnedImage('registry.example:5000/lab/toil-ts', `registry.example:5000/lab/toil-ts@sha256:${D}`).image).toBe(
      `registry.example:5000/lab/toil-ts@sha256:${D}`,
    );
  });

  it('keeps the name, saying why, when the kubelet reports no registry digest', () => {
    const p = pinnedImage('toil-ts:0.1.0', `sha256:${D}`);
    expect(p.image).toBe('toil-ts:0.1.0');
    expect(p.note).toBe(
      `worker pods run the leader's image 'toil-ts:0.1.0' by its name: the kubelet reports no registry digest for it (sha256:${D})`,
    );
  });
});
