/**
 * The OpenAPI v3 documents kubectl reads. kubectl 1.32 looks up each group-version's document to
 * learn whether PATCH on a kind accepts `fieldValidation` (then it validates server-side with
 * fieldValidation=Strict); for strategic-merge patch metadata it falls back to its compiled-in
 * types when the document carries no schema for the kind, which is exact for built-in kinds.
 */
import { createHash } from 'node:crypto';
import { GROUP_VERSIONS, RESOURCES, gvString } from './resources.js';

const prefix = (group: string, version: string): string => (group ? `apis/${group}/${version}` : `api/${version}`);
const hash = (s: string): string => createHash('sha512').update(s).digest('hex').slice(0, 128).toUpperCase();

export function buildOpenApiV3Index(): unknown {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const g of GROUP_VERSIONS) {
    const p = prefix(g.group, g.version);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash(p)}` };
  }
  return { paths };
}

const param = (name: string, description: string): unknown => ({
  name,
  in: 'query',
  description,
  schema: { type: 'string', uniqueItems: true },
});
const PARAMS = [
  param('dryRun', 'When present, indicates that modifications should not be persisted.'),
  param('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  param(
    'fieldValidation',
    'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.',
  ),
];

export function buildOpenApiV3Doc(path: string): unknown {
  const gv = GROUP_VERSIONS.find((g) => prefix(g.group, g.version) === path);
  if (!gv) return undefined;
  const paths: Record<string, unknown> = {};
  for (const r of RESOURCES.filter((x) => x.group === gv.group && x.version === gv.version && !x.virtual)) {
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const base = `/${path}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.plural}`;
    const op = (action: string, verb: string): unknown => ({
      tags: [gvString(r.group, r.version)],
      operationId: `${verb}${r.kind}`,
      parameters: action === 'patch' || action === 'put' || action === 'post' ? PARAMS : [],
      responses: { 200: { description: 'OK' } },
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
    });
    paths[base] = { get: op('list', 'list'), post: op('post', 'create') };
    paths[`${base}/{name}`] = {
      get: op('get', 'read'),
      put: op('put', 'replace'),
      patch: op('patch', 'patch'),
      delete: op('delete', 'delete'),
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}
