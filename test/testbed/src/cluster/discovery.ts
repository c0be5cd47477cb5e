/** Discovery as a real API server answers it: API versions and groups, resource lists, /version, health and /openapi/v3. */
import { notFoundPath } from './errors.js';
import { buildOpenApiV3Doc, buildOpenApiV3Index } from './openapi.js';
import { GROUP_VERSIONS, RESOURCES, gvString } from './resources.js';
import type { Obj } from './store.js';

/** A non-resource GET: its path, the group/version it names (if it is a group version's root), the URL and the server's port. */
export interface DiscoveryTarget {
  path: string;
  groupVersion: { group: string; version: string } | undefined;
  url: URL;
  port: number;
}

/** A 200 answer: a JSON body (or `text`, sent as text/plain) and extra headers. */
export interface Reply {
  body: unknown;
  headers?: Record<string, string>;
  text?: boolean;
}

export function discovery(target: DiscoveryTarget): Reply {
  const { path, groupVersion: r, url, port } = target;
  if (path === '/api') {
    return {
      body: {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }],
      },
    };
  }
  if (path === '/apis') {
    const groups = [...new Set(GROUP_VERSIONS.filter((g) => g.group).map((g) => g.group))].map((g) => apiGroup(g));
    return { body: { kind: 'APIGroupList', apiVersion: 'v1', groups } };
  }
  const gm = /^\/apis\/([^/]+)$/.exec(path);
  if (gm && GROUP_VERSIONS.some((g) => g.group === gm[1])) {
    return { body: { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(gm[1]!) } };
  }
  if (r && GROUP_VERSIONS.some((g) => g.group === r.group && g.version === r.version)) {
    return { body: resourceList(r.group, r.version) };
  }
  if (path === '/version') {
    return {
      body: {
        major: '1',
        minor: '32',
        gitVersion: 'v1.32.0-toil-ts-test',
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2026-01-01T00:00:00Z',
        goVersion: 'go1.23.0',
        compiler: 'gc',
        platform: 'linux/amd64',
      },
    };
  }
  if (path === '/healthz' || path === '/livez' || path === '/readyz') {
    return { body: 'ok', text: true };
  }
  if (path === '/openapi/v3') {
    return { body: buildOpenApiV3Index() };
  }
  const om = /^\/openapi\/v3\/(apis?\/.+)$/.exec(path);
  if (om) {
    const doc = buildOpenApiV3Doc(om[1]!);
    if (doc) {
      return { body: doc, headers: { Etag: `"${url.searchParams.get('hash') ?? 'x'}"` } };
    }
  }
  throw notFoundPath();
}

function apiGroup(group: string): Obj {
  const versions = GROUP_VERSIONS.filter((g) => g.group === group).map((g) => ({
    groupVersion: gvString(g.group, g.version),
    version: g.version,
  }));
  return { name: group, versions, preferredVersion: versions[0] };
}

function resourceList(group: string, version: string): Obj {
  const resources: Obj[] = [];
  for (const i of RESOURCES.filter((x) => x.group === group && x.version === version)) {
    resources.push({
      name: i.plural,
      singularName: i.singular,
      namespaced: i.namespaced,
      kind: i.kind,
      verbs: i.verbs,
      ...(i.shortNames.length ? { shortNames: i.shortNames } : {}),
      ...(i.categories.length ? { categories: i.categories } : {}),
      storageVersionHash: Buffer.from(`${i.group}/${i.plural}`).toString('base64').slice(0, 11),
    });
    for (const [sub, s] of Object.entries(i.subresources)) {
      resources.push({
        name: `${i.plural}/${sub}`,
        singularName: '',
        namespaced: i.namespaced,
        ...(s.group ? { group: s.group, version: s.version } : {}),
        kind: s.kind,
        verbs: s.verbs,
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gvString(group, version), resources };
}
