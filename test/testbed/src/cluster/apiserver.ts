/** The HTTPS front end: discovery, REST verbs, watches, logs, authn/authz, faults and counters. */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open, stat } from 'node:fs/promises';
import { ApiError, badRequest, methodNotAllowed, notFoundPath } from './errors.js';
import { RESOURCES, GROUP_VERSIONS, findResource, gvString, resKey, type ResourceInfo } from './resources.js';
import type { Registry } from './registry.js';
import { clone, matchRequirements, parseLabelSelector, SelectorError, type Obj, type StoreEvent } from './store.js';
import { authorize, forbiddenError, type Attributes, type Authenticator, type User } from './auth.js';
import { toTable } from './tables.js';
import { compileFieldSelector } from './fields.js';
import { decodeProtobuf } from './proto.js';
import { buildOpenApiV3Index, buildOpenApiV3Doc } from './openapi.js';
import { laggedStream, type Faults } from './faults.js';
import { nextBookmarkAt, watchLifetimeMs } from './watchTiming.js';
import { enforceOwnerReferencePermissions } from './ownerRefAdmission.js';

/**
 * A boolean query parameter as the real server reads one: absent, `false` (any case) or `0` is
 * false; any other value, the empty one included, is true (clients send `true`, `True`, `1`).
 */
function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}

export interface ApiServerDeps {
  registry: Registry;
  auth: Authenticator;
  faults: Faults;
  logDir: string;
  /** test-control calls (POST /_testcluster/call, admin only): method name and arguments */
  control?: (method: string, args: unknown[]) => Promise<unknown>;
  /** called for pods/eviction */
  evict: (pod: Obj) => Promise<void>;
  bookmarkIntervalMs: number;
  /** kube-apiserver's --min-request-timeout: a watch without timeoutSeconds lasts 1–2 times this */
  minRequestTimeoutSeconds: number;
  /** the OwnerReferencesPermissionEnforcement admission plugin is on */
  ownerReferencesPermissionEnforcement: boolean;
}

/** An open watch as the server sees it (`TestCluster.openWatches`). */
export interface OpenWatch {
  resource: string;
  /** the client's timeoutSeconds, or null when it set none */
  timeoutSeconds: number | null;
  /** when the server ends the watch (epoch ms) */
  endsAt: number;
  /** how long the server gave it from its start (ms) */
  lifetimeMs: number;
  /** whether it gets bookmarks (allowWatchBookmarks) */
  bookmarks: boolean;
}

interface Route {
  info?: ResourceInfo;
  ns?: string;
  name?: string;
  sub?: string;
  group: string;
  version: string;
  nonResource?: string;
}

/** One resource request, routed, authenticated and authorised. */
interface ResourceCall {
  req: IncomingMessage;
  res: ServerResponse;
  route: Route;
  info: ResourceInfo;
  verb: string;
  q: URLSearchParams;
  user: User;
  /** the request's namespace (undefined for cluster-scoped resources) */
  ns: string | undefined;
}

const NO_ATTRIBUTES = { apiGroup: '', resource: '', subresource: '', name: '', namespace: '' };

function verbOf(method: string, r: Route, q: URLSearchParams): string {
  const isWatch = queryBool(q, 'watch');
  switch (method) {
    case 'GET':
      return r.name ? 'get' : isWatch ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return r.name ? 'delete' : 'deletecollection';
    default:
      throw methodNotAllowed();
  }
}

const itemKey = (o: Obj): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class ApiServer {
  server?: https.Server;
  port = 0;
  counts = new Map<string, number>();
  private watches = new Set<{ res: ServerResponse; stop: (err?: Obj) => void; resource: string; info: OpenWatch }>();
  private sockets = new Set<import('node:stream').Duplex>();
  constructor(private d: ApiServerDeps) {}

  async listen(tls: { cert: string; key: string }, port = 0): Promise<number> {
    this.server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.keepAliveTimeout = 30_000;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this.port;
  }

  async close(): Promise<void> {
    for (const w of [...this.watches]) w.stop();
    if (!this.server) return;
    const closed = new Promise<void>((r) => this.server!.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Ends matching watches: without an error (the client simply sees the stream end) or with 410 Expired. */
  endWatches(filter: (resource: string) => boolean, expire: boolean): number {
    let n = 0;
    for (const w of [...this.watches]) {
      if (!filter(w.resource)) continue;
      n++;
      w.stop(
        expire
          ? {
              kind: 'Status',
              apiVersion: 'v1',
              metadata: {},
              status: 'Failure',
              message: 'The resourceVersion for the provided watch is too old.',
              reason: 'Expired',
              code: 410,
            }
          : undefined,
      );
    }
    return n;
  }

  watchCount(resource?: string): number {
    return [...this.watches].filter((w) => !resource || w.resource === resource).length;
  }

  openWatches(resource?: string): OpenWatch[] {
    return [...this.watches].filter((w) => !resource || w.resource === resource).map((w) => ({ ...w.info }));
  }

  private count(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Answers JSON, with extra headers and `Warning: 299` headers when given. */
  private send(
    res: ServerResponse,
    code: number,
    body: unknown,
    extra: { headers?: Record<string, string>; warnings?: string[] } = {},
  ): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const data = JSON.stringify(body);
    const h: Record<string, string | string[]> = {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      ...(extra.headers ?? {}),
    };
    const warnings = extra.warnings ?? [];
    if (warnings.length) h.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, h);
    res.end(data);
  }
  private sendError(res: ServerResponse, e: unknown): void {
    if (e instanceof ApiError) {
      this.send(res, e.code, e.status(), { headers: e.headers });
      return;
    }
    const msg = e instanceof Error ? e.message : String(e);
    this.send(res, 500, new ApiError(500, 'InternalError', `Internal error occurred: ${msg}`, { causes: [{ message: msg }] }).status());
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const buf = Buffer.concat(chunks);
    const ct = req.headers['content-type'] ?? '';
    if (ct.startsWith('application/vnd.kubernetes.protobuf')) {
      try {
        return decodeProtobuf(buf);
      } catch (e) {
        throw new ApiError(415, 'UnsupportedMediaType', (e as Error).message, {});
      }
    }
    const text = buf.toString('utf8');
    if (!text.trim()) return undefined;
    if (ct.includes('yaml')) {
      const { parse } = await import('yaml');
      return parse(text) as unknown;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw badRequest(`error decoding from json: ${(e as Error).message}`);
    }
  }

  private route(path: string): Route | undefined {
    const segs = path.split('/').filter(Boolean);
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 2) {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 3) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else return undefined;
    if (rest.length === 0) return { group, version, nonResource: path };
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && findResource(group, version, rest[2]!)?.namespaced) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const info = findResource(group, version, rest[0]!);
    if (!info) return { group, version };
    const r: Route = { info, group, version };
    if (ns !== undefined) r.ns = ns;
    if (rest[1] !== undefined) r.name = rest[1];
    if (rest[2] !== undefined) r.sub = rest[2];
    if (rest.length > 3) return { group, version };
    return r;
  }

  /** The user a request acts as: its own, or the one it impersonates (when RBAC allows that). */
  private impersonate(req: IncomingMessage, user: User): User {
    const as = req.headers['impersonate-user'];
    if (typeof as !== 'string') return user;
    const attrs: Attributes = {
      ...NO_ATTRIBUTES,
      verb: 'impersonate',
      resourceRequest: true,
      path: '',
      resource: as.startsWith('system:serviceaccount:') ? 'serviceaccounts' : 'users',
      name: as,
    };
    if (!authorize(this.d.registry.store, user, attrs)) throw forbiddenError(user, attrs);
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(as);
    const extraGroups = ([] as string[]).concat(req.headers['impersonate-group'] ?? []);
    return {
      name: as,
      groups: [
        ...new Set([...extraGroups, ...(sa ? ['system:serviceaccounts', `system:serviceaccounts:${sa[1]!}`] : []), 'system:authenticated']),
      ],
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    try {
      const user = this.impersonate(req, this.d.auth.authenticate(req.headers.authorization));
      const path = url.pathname.replace(/\/+$/, '') || '/';
      if (path === '/_testcluster/call' && method === 'POST' && this.d.control) {
        await this.controlCall(req, res, user, path);
        return;
      }
      const r = this.route(path);
      if (!r || !r.info) {
        const attrs: Attributes = { ...NO_ATTRIBUTES, verb: method.toLowerCase(), resourceRequest: false, path };
        this.count(`${attrs.verb} ${path.startsWith('/openapi') ? '/openapi' : path.startsWith('/api') ? 'discovery' : path}`);
        if (!authorize(this.d.registry.store, user, attrs)) throw forbiddenError(user, attrs);
        this.d.faults.check({ verb: attrs.verb, resource: '', namespace: '', name: '', path });
        await this.nonResource(req, res, { path, route: r, url });
        return;
      }
      const call: ResourceCall = {
        req,
        res,
        route: r,
        info: r.info,
        verb: verbOf(method, r, url.searchParams),
        q: url.searchParams,
        user,
        ns: r.info.namespaced ? r.ns : undefined,
      };
      await this.admit(call, path);
      await this.resourceRequest(call);
    } catch (e) {
      this.sendError(res, e);
    }
  }

  private async controlCall(req: IncomingMessage, res: ServerResponse, user: User, path: string): Promise<void> {
    if (!user.groups.includes('system:masters'))
      throw forbiddenError(user, { ...NO_ATTRIBUTES, verb: 'post', resourceRequest: false, path });
    const b = ((await this.readBody(req)) ?? {}) as { method?: string; args?: unknown[] };
    const out = await this.d.control!(String(b.method), b.args ?? []);
    this.send(res, 200, { result: out ?? null });
  }

  /** Counts the request, checks RBAC, then applies injected delays and faults. */
  private async admit({ route: r, info, verb, user }: ResourceCall, path: string): Promise<void> {
    const resource = r.sub ? `${info.plural}/${r.sub}` : info.plural;
    this.count(`${verb} ${resource}`);
    const attrs: Attributes = {
      verb,
      resourceRequest: true,
      path,
      apiGroup: info.group,
      resource: info.plural,
      subresource: r.sub ?? '',
      name: r.name ?? '',
      namespace: info.namespaced ? (r.ns ?? '') : info.kind === 'Namespace' ? (r.name ?? '') : '',
    };
    if (info.kind === 'Namespace') attrs.namespace = r.name ?? '';
    if (!authorize(this.d.registry.store, user, attrs)) throw forbiddenError(user, attrs);
    const delay = this.d.faults.delayFor({ verb, resource, namespace: r.ns ?? '', name: r.name ?? '' });
    if (delay > 0) await new Promise((res2) => setTimeout(res2, delay));
    this.d.faults.check({ verb, resource, namespace: r.ns ?? '', name: r.name ?? '', path });
  }

  // ------------------------------------------------------------------------------- discovery

  private async nonResource(
    req: IncomingMessage,
    res: ServerResponse,
    target: { path: string; route: Route | undefined; url: URL },
  ): Promise<void> {
    const { path, route: r, url } = target;
    if (req.method !== 'GET') throw methodNotAllowed();
    if (this.d.auth.issuer.serve(path, res)) return;
    const port = this.port;
    if (path === '/api') {
      this.send(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }],
      });
      return;
    }
    if (path === '/apis') {
      const groups = [...new Set(GROUP_VERSIONS.filter((g) => g.group).map((g) => g.group))].map((g) => this.apiGroup(g));
      this.send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
      return;
    }
    const gm = /^\/apis\/([^/]+)$/.exec(path);
    if (gm && GROUP_VERSIONS.some((g) => g.group === gm[1])) {
      this.send(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...this.apiGroup(gm[1]!) });
      return;
    }
    if (r?.nonResource && GROUP_VERSIONS.some((g) => g.group === r.group && g.version === r.version)) {
      this.send(res, 200, this.resourceList(r.group, r.version));
      return;
    }
    if (path === '/version') {
      this.send(res, 200, {
        major: '1',
        minor: '32',
        gitVersion: 'v1.32.0-toil-ts-test',
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2026-01-01T00:00:00Z',
        goVersion: 'go1.23.0',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
      return;
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === '/openapi/v3') {
      this.send(res, 200, buildOpenApiV3Index());
      return;
    }
    const om = /^\/openapi\/v3\/(apis?\/.+)$/.exec(path);
    if (om) {
      const doc = buildOpenApiV3Doc(om[1]!);
      if (doc) {
        this.send(res, 200, doc, { headers: { Etag: `"${url.searchParams.get('hash') ?? 'x'}"` } });
        return;
      }
    }
    throw notFoundPath();
  }

  private apiGroup(group: string): Obj {
    const versions = GROUP_VERSIONS.filter((g) => g.group === group).map((g) => ({
      groupVersion: gvString(g.group, g.version),
      version: g.version,
    }));
    return { name: group, versions, preferredVersion: versions[0] };
  }

  private resourceList(group: string, version: string): Obj {
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

  // ------------------------------------------------------------------------------- resources

  private wantsTable(req: IncomingMessage): boolean {
    return /as=Table/.test(req.headers.accept ?? '');
  }

  private selectors(info: ResourceInfo, q: URLSearchParams): (o: Obj) => boolean {
    try {
      const lreq = parseLabelSelector(q.get('labelSelector') ?? undefined);
      const fields = compileFieldSelector(q.get('fieldSelector') ?? undefined, resKey(info), info);
      return (o: Obj) => matchRequirements(lreq, o.metadata?.labels) && fields(o);
    } catch (e) {
      if (e instanceof SelectorError) throw badRequest(e.message);
      throw e;
    }
  }

  private writeOpts(q: URLSearchParams, sub?: string): { dryRun?: boolean; fieldValidation?: string; subresource?: string } {
    const o: { dryRun?: boolean; fieldValidation?: string; subresource?: string } = {};
    const dr = q.getAll('dryRun');
    if (dr.length) {
      if (dr.some((x) => x !== 'All')) throw badRequest(`Invalid dry run value: ${dr.join(',')}`);
      o.dryRun = true;
    }
    const fv = q.get('fieldValidation');
    if (fv) o.fieldValidation = fv;
    if (sub) o.subresource = sub;
    return o;
  }

  private async resourceRequest(c: ResourceCall): Promise<void> {
    const { info, verb, route: r, ns } = c;
    const sub = r.sub;
    if (sub && !info.subresources[sub]) throw notFoundPath();
    if (sub && !info.subresources[sub]!.verbs.includes(verb)) throw methodNotAllowed();
    if (!sub && !info.verbs.includes(verb)) throw methodNotAllowed();
    if (info.namespaced && r.name === undefined && ns === undefined && !['list', 'watch'].includes(verb)) throw notFoundPath();
    switch (verb) {
      case 'get':
        await this.getOne(c);
        return;
      case 'list':
        this.list(c);
        return;
      case 'watch':
        this.watch(c);
        return;
      case 'create':
        await this.create(c);
        return;
      case 'update':
      case 'patch':
        await this.updateOrPatch(c);
        return;
      case 'delete':
        await this.deleteOne(c);
        return;
      case 'deletecollection':
        await this.deleteCollection(c);
        return;
      default:
        throw methodNotAllowed();
    }
  }

  private async getOne(c: ResourceCall): Promise<void> {
    const o = this.d.registry.get(c.info, c.ns, c.route.name!);
    if (c.route.sub === 'log') {
      await this.logs(c, o);
      return;
    }
    if (this.wantsTable(c.req)) {
      this.send(
        c.res,
        200,
        toTable(resKey(c.info), [o], { resourceVersion: o.metadata.resourceVersion }, c.q.get('includeObject') ?? 'Metadata'),
      );
      return;
    }
    this.send(c.res, 200, o);
  }

  /** `limit`/`continue` paging over items sorted by namespace/name; fills listMeta's continue fields. */
  private page(items: Obj[], q: URLSearchParams, listMeta: Obj): Obj[] {
    const limit = Number(q.get('limit') ?? '0');
    const cont = q.get('continue');
    if (cont) {
      let start: string;
      try {
        start = JSON.parse(Buffer.from(cont, 'base64').toString('utf8')).start as string;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data');
      }
      items = items.filter((o) => itemKey(o) > start);
    }
    if (limit > 0 && items.length > limit) {
      const last = items[limit - 1]!;
      listMeta.continue = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: this.d.registry.store.rv, start: itemKey(last) })).toString(
        'base64',
      );
      listMeta.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    return items;
  }

  private list({ req, res, info, ns, q }: ResourceCall): void {
    const reg = this.d.registry;
    const match = this.selectors(info, q);
    const sorted = reg
      .list(info, ns)
      .filter(match)
      .sort((a, b) => itemKey(a).localeCompare(itemKey(b)));
    const listMeta: Obj = { resourceVersion: String(reg.store.rv) };
    const items = this.page(sorted, q, listMeta);
    if (this.wantsTable(req)) {
      this.send(
        res,
        200,
        toTable(
          resKey(info),
          items.map((o) => clone(o)),
          listMeta,
          q.get('includeObject') ?? 'Metadata',
        ),
      );
      return;
    }
    // a real server omits kind/apiVersion on items of a typed list
    const list = {
      kind: `${info.kind}List`,
      apiVersion: gvString(info.group, info.version),
      metadata: listMeta,
      items: items.map((o) => {
        const c = clone(o);
        delete c.kind;
        delete c.apiVersion;
        return c;
      }),
    };
    this.send(res, 200, list);
  }

  private async create(c: ResourceCall): Promise<void> {
    const body = await this.readBody(c.req);
    if (c.route.sub) {
      await this.createSub(c, body);
      return;
    }
    if (c.info.virtual) {
      this.review(c.res, c.info, body, c.user);
      return;
    }
    if (c.route.name) throw methodNotAllowed();
    const out = await this.d.registry.create(c.info, c.ns, body, { ...this.writeOpts(c.q), ...this.validatingAdmission(c) });
    this.send(c.res, 201, out.obj, { warnings: out.warnings });
  }

  private async updateOrPatch(c: ResourceCall): Promise<void> {
    const { req, res, info, ns, route: r, verb, q } = c;
    const body = await this.readBody(req);
    const reg = this.d.registry;
    const opts = { ...this.writeOpts(q, r.sub), ...this.validatingAdmission(c) };
    const out =
      verb === 'update'
        ? await reg.update({ inf: info, ns, name: r.name! }, body, opts)
        : await reg.patch({ inf: info, ns, name: r.name! }, { contentType: req.headers['content-type'] ?? '', patch: body }, opts);
    this.send(res, 200, out.obj, { warnings: out.warnings });
  }

  /** The validating admission plugins that are on, for a user's create or update. */
  private validatingAdmission({ info, user, route }: ResourceCall): { validateAdmission?: (obj: Obj, old: Obj | undefined) => void } {
    if (!this.d.ownerReferencesPermissionEnforcement) return {};
    const can = (a: Attributes): boolean => authorize(this.d.registry.store, user, a);
    return {
      validateAdmission: (obj, old) => enforceOwnerReferencePermissions({ inf: info, obj, old, subresource: route.sub, user, can }),
    };
  }

  private async deleteOne({ req, res, info, ns, route: r, q }: ResourceCall): Promise<void> {
    const body = ((await this.readBody(req)) ?? {}) as Obj;
    const out = this.d.registry.delete(info, ns, r.name!, this.deleteOpts(body, q));
    if (out.immediate && info.kind !== 'Pod') {
      this.send(
        res,
        200,
        {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: { name: r.name, ...(info.group ? { group: info.group } : {}), kind: info.plural, uid: out.obj.metadata.uid },
        },
        { warnings: out.warnings },
      );
    } else this.send(res, 200, out.obj, { warnings: out.warnings });
  }

  private async deleteCollection({ req, res, info, ns, q }: ResourceCall): Promise<void> {
    const reg = this.d.registry;
    const body = ((await this.readBody(req)) ?? {}) as Obj;
    const opts = this.deleteOpts(body, q);
    const match = this.selectors(info, q);
    const items: Obj[] = [];
    let warnings: string[] = [];
    for (const o of reg.list(info, ns).filter(match)) {
      try {
        const out = reg.delete(info, o.metadata.namespace, o.metadata.name, opts);
        items.push(out.obj);
        warnings = out.warnings;
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    this.send(
      res,
      200,
      {
        kind: `${info.kind}List`,
        apiVersion: gvString(info.group, info.version),
        metadata: { resourceVersion: String(reg.store.rv) },
        items,
      },
      { warnings: warnings },
    );
  }

  private deleteOpts(body: Obj, q: URLSearchParams): import('./registry.js').DeleteOptions {
    const o: import('./registry.js').DeleteOptions = {};
    const pp = q.get('propagationPolicy') ?? body.propagationPolicy;
    if (pp) o.propagationPolicy = pp;
    else if (body.orphanDependents === true || queryBool(q, 'orphanDependents')) o.propagationPolicy = 'Orphan';
    const gp = q.get('gracePeriodSeconds') ?? body.gracePeriodSeconds;
    if (gp !== undefined && gp !== null) o.gracePeriodSeconds = Number(gp);
    if (body.preconditions) o.preconditions = body.preconditions;
    if (q.getAll('dryRun').includes('All') || (body.dryRun ?? []).includes?.('All')) o.dryRun = true;
    return o;
  }

  private review(res: ServerResponse, info: ResourceInfo, body: unknown, user: User): void {
    const b = (body ?? {}) as Obj;
    if (info.kind === 'SelfSubjectReview') {
      this.send(res, 201, {
        kind: 'SelfSubjectReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        status: {
          userInfo: {
            username: user.name,
            groups: user.groups,
            ...(user.uid ? { uid: user.uid } : {}),
            ...(user.extra ? { extra: user.extra } : {}),
          },
        },
      });
      return;
    }
    const ra = (b.spec?.resourceAttributes ?? {}) as Obj;
    const nra = b.spec?.nonResourceAttributes as Obj | undefined;
    const attrs: Attributes = nra
      ? {
          verb: nra.verb ?? '',
          resourceRequest: false,
          path: nra.path ?? '',
          apiGroup: '',
          resource: '',
          subresource: '',
          name: '',
          namespace: '',
        }
      : {
          verb: ra.verb ?? '',
          resourceRequest: true,
          path: '',
          apiGroup: ra.group ?? '',
          resource: ra.resource ?? '',
          subresource: ra.subresource ?? '',
          name: ra.name ?? '',
          namespace: ra.namespace ?? '',
        };
    const allowed = authorize(this.d.registry.store, user, attrs);
    this.send(res, 201, {
      ...b,
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      status: { allowed, ...(allowed ? { reason: 'RBAC: allowed' } : {}) },
    });
  }

  private async createSub({ res, info, ns, route }: ResourceCall, body: unknown): Promise<void> {
    const reg = this.d.registry;
    const name = route.name!;
    const sub = route.sub!;
    const b = (body ?? {}) as Obj;
    if (info.kind === 'ServiceAccount' && sub === 'token') {
      reg.get(info, ns, name);
      const spec = (b.spec ?? {}) as Obj;
      let pod: Obj | undefined;
      if (spec.boundObjectRef?.kind === 'Pod') pod = reg.store.peek('pods', ns, spec.boundObjectRef.name);
      const exp = Math.max(600, Number(spec.expirationSeconds ?? 3600));
      const t = this.d.auth.issueServiceAccountToken(ns!, name, {
        expirationSeconds: exp,
        ...(pod ? { pod } : {}),
        ...(spec.audiences ? { audiences: spec.audiences } : {}),
      });
      this.send(res, 201, {
        kind: 'TokenRequest',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { name, namespace: ns, creationTimestamp: null },
        spec: {
          audiences: spec.audiences ?? ['https://kubernetes.default.svc.cluster.local'],
          expirationSeconds: exp,
          boundObjectRef: spec.boundObjectRef ?? null,
        },
        status: { token: t.token, expirationTimestamp: t.expirationTimestamp },
      });
      return;
    }
    if (info.kind === 'Pod' && sub === 'eviction') {
      const pod = reg.get(info, ns, name);
      await this.d.evict(pod);
      this.send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
      return;
    }
    if (info.kind === 'Pod' && sub === 'binding') {
      const target = b.target?.name as string | undefined;
      if (!target) throw badRequest('target name is required');
      const pod = reg.get(info, ns, name);
      if (pod.spec.nodeName)
        throw new ApiError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on pods/binding "${name}": pod ${name} is already assigned to node "${String(pod.spec.nodeName)}"`,
          { name, kind: 'pods/binding' },
        );
      const p = reg.store.get('pods', ns, name)!;
      p.spec.nodeName = target;
      reg.store.update('pods', p);
      reg.onChange();
      this.send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
      return;
    }
    throw notFoundPath();
  }

  // ---------------------------------------------------------------------------------- watch

  private watch(c: ResourceCall): void {
    const { req, res, info, ns, q } = c;
    const store = this.d.registry.store;
    const match = this.selectors(info, q);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const out = laggedStream(res, () => this.d.faults.watchLagFor(info.plural));
    const write = watchWriter(out, resKey(info), this.wantsTable(req) ? (q.get('includeObject') ?? 'Metadata') : undefined);
    const deliver = watchDelivery(resKey(info), (o) => ns === undefined || o.metadata.namespace === ns, match, write);
    const cleanup: (() => void)[] = [];
    const open = this.watchInfo(c);
    const entry = {
      res,
      resource: open.resource,
      info: open,
      stop: (err?: Obj): void => {
        for (const undo of cleanup.splice(0)) undo();
        this.watches.delete(entry);
        if (err && !res.writableEnded) res.write(`${JSON.stringify({ type: 'ERROR', object: err })}\n`);
        if (!res.writableEnded) res.end();
      },
    };
    this.watches.add(entry);
    req.on('close', () => entry.stop());
    res.on('close', () => entry.stop());
    if (!this.replay(c, { match, write, deliver, stop: entry.stop })) return;
    cleanup.push(store.on(deliver));
    const timer = setTimeout(() => entry.stop(), open.endsAt - Date.now());
    cleanup.push(() => clearTimeout(timer));
    if (open.bookmarks) cleanup.push(this.scheduleBookmarks(c, { endsAt: open.endsAt, write }));
  }

  /** When the watch ends (its timeoutSeconds, else a random 1–2 × --min-request-timeout) and whether it gets bookmarks. */
  private watchInfo({ info, q }: ResourceCall): OpenWatch {
    const asked = Number(q.get('timeoutSeconds') ?? '0');
    const timeoutSeconds = Number.isFinite(asked) && asked > 0 ? asked : 0;
    const lifetimeMs = watchLifetimeMs({ timeoutSeconds, minRequestTimeoutSeconds: this.d.minRequestTimeoutSeconds });
    return {
      resource: info.plural,
      timeoutSeconds: timeoutSeconds || null,
      endsAt: Date.now() + lifetimeMs,
      lifetimeMs,
      bookmarks: queryBool(q, 'allowWatchBookmarks'),
    };
  }

  /** Sends bookmarks at the watch cache's times (watchTiming.ts); returns their cancellation. */
  private scheduleBookmarks({ info }: ResourceCall, w: { endsAt: number; write: WatchWrite }): () => void {
    const store = this.d.registry.store;
    let timer: NodeJS.Timeout | undefined;
    const arm = (after: number): void => {
      const at = nextBookmarkAt({ after, endsAt: w.endsAt, intervalMs: this.d.bookmarkIntervalMs });
      if (at === undefined) return;
      timer = setTimeout(() => {
        w.write('BOOKMARK', {
          kind: info.kind,
          apiVersion: gvString(info.group, info.version),
          metadata: { resourceVersion: String(store.rv) },
        });
        arm(at);
      }, at - Date.now());
    };
    arm(Date.now());
    return () => clearTimeout(timer);
  }

  /** A watch's first events: the current list (resourceVersion unset or 0, or sendInitialEvents) or the history after resourceVersion; false when it ended with an error. */
  private replay(
    { info, ns, q }: ResourceCall,
    w: { match: (o: Obj) => boolean; write: WatchWrite; deliver: (e: StoreEvent) => void; stop: (err?: Obj) => void },
  ): boolean {
    const store = this.d.registry.store;
    const rvParam = q.get('resourceVersion') ?? '';
    const sendInitial = queryBool(q, 'sendInitialEvents');
    if (rvParam === '' || rvParam === '0' || sendInitial) {
      for (const o of this.d.registry.list(info, ns).filter(w.match)) w.write('ADDED', clone(o));
      if (sendInitial && queryBool(q, 'allowWatchBookmarks'))
        w.write('BOOKMARK', {
          kind: info.kind,
          apiVersion: gvString(info.group, info.version),
          metadata: { resourceVersion: String(store.rv), annotations: { 'k8s.io/initial-events-end': 'true' } },
        });
      return true;
    }
    const rvNum = Number(rvParam);
    if (!Number.isFinite(rvNum)) {
      w.stop({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `invalid resource version: ${rvParam}`,
        reason: 'BadRequest',
        code: 400,
      });
      return false;
    }
    const evs = store.since(resKey(info), rvNum);
    if (!evs || this.d.faults.isExpired(rvNum)) {
      w.stop({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${rvNum} (${store.compactedRv + 1})`,
        reason: 'Expired',
        code: 410,
      });
      return false;
    }
    for (const e of evs) w.deliver(e);
    return true;
  }

  // ----------------------------------------------------------------------------------- logs

  private async logs({ req, res, q }: ResourceCall, pod: Obj): Promise<void> {
    const container = logContainer(pod, q);
    if (!pod.spec?.nodeName) {
      // not scheduled yet: there is no kubelet to ask, and the API server answers with an empty log
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
      res.end();
      return;
    }
    const previous = queryBool(q, 'previous');
    const follow = queryBool(q, 'follow');
    const restart = logInstance(pod, container, previous);
    const idx = previous ? restart - 1 : restart;
    const file = `${this.d.logDir}/${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}/${container}/${idx}.log`;
    res.writeHead(200, {
      'Content-Type': 'text/plain',
      'Cache-Control': 'no-cache, private',
      ...(follow ? { 'Transfer-Encoding': 'chunked' } : {}),
    });
    const out = new LogWriter(res, q);
    const reader = new LogReader(file);
    let lines = (await reader.readNew()).map((l) => out.format(l)).filter((x): x is string => x !== undefined);
    const tail = q.has('tailLines') ? Number(q.get('tailLines')) : undefined;
    if (tail !== undefined && tail >= 0) lines = lines.slice(Math.max(0, lines.length - tail));
    for (const l of lines) if (!out.emit(l)) break;
    if (follow && !previous) await this.followLog({ req, pod, container, restart }, reader, out);
    res.end();
  }

  /** Streams new lines while that container instance runs (or until the client goes). */
  private async followLog(
    f: { req: IncomingMessage; pod: Obj; container: string; restart: number },
    reader: LogReader,
    out: LogWriter,
  ): Promise<void> {
    const { pod, container, restart } = f;
    let closed = false;
    f.req.on('close', () => {
      closed = true;
    });
    while (!closed) {
      await new Promise((r) => setTimeout(r, 100));
      for (const l of await reader.readNew()) {
        const line = out.format(l);
        if (line !== undefined && !out.emit(line)) {
          closed = true;
          break;
        }
      }
      const p = this.d.registry.store.peek('pods', pod.metadata.namespace, pod.metadata.name);
      const st = p && p.metadata.uid === pod.metadata.uid ? containerStatusOf(p, container) : undefined;
      if (!(st && st.state?.running && (st.restartCount ?? 0) === restart)) {
        for (const l of await reader.readNew()) {
          const line = out.format(l);
          if (line !== undefined) out.emit(line);
        }
        break;
      }
    }
  }
}

const containerStatusOf = (p: Obj, container: string): Obj | undefined =>
  [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])].find((s: Obj) => s.name === container);

/** The container a log request names (or the pod's only one); 400 as a real server words it. */
function logContainer(pod: Obj, q: URLSearchParams): string {
  const containers = ((pod.spec?.containers ?? []) as Obj[]).map((c) => c.name as string);
  const inits = ((pod.spec?.initContainers ?? []) as Obj[]).map((c) => c.name as string);
  const podName = pod.metadata.name as string;
  let container = q.get('container') ?? '';
  if (!container) {
    if (containers.length !== 1)
      throw badRequest(
        `a container name must be specified for pod ${podName}, choose one of: [${containers.join(' ')}]${inits.length ? ` or one of the init containers: [${inits.join(' ')}]` : ''}`,
      );
    container = containers[0]!;
  }
  if (!containers.includes(container) && !inits.includes(container))
    throw badRequest(`container ${container} is not valid for pod ${podName}`);
  return container;
}

/** The container's restart count, once it has a log to show (previous: a terminated instance before it). */
function logInstance(pod: Obj, container: string, previous: boolean): number {
  const cs = containerStatusOf(pod, container);
  const restart = (cs?.restartCount ?? 0) as number;
  if (previous) {
    if (!cs || restart === 0)
      throw badRequest(`previous terminated container "${container}" in pod "${String(pod.metadata.name)}" not found`);
  } else if (!cs || (!cs.state?.running && !cs.state?.terminated)) {
    const why = cs?.state?.waiting?.reason ?? 'ContainerCreating';
    throw badRequest(`container "${container}" in pod "${String(pod.metadata.name)}" is waiting to start: ${why}`);
  }
  return restart;
}

/** Reads the lines a CRI log file gained since the last call (a partial last line waits for its end). */
class LogReader {
  private pos = 0;
  private partial = '';
  constructor(private readonly file: string) {}

  async readNew(): Promise<string[]> {
    let size = 0;
    try {
      size = (await stat(this.file)).size;
    } catch {
      return [];
    }
    if (size <= this.pos) return [];
    const fh = await open(this.file, 'r');
    try {
      const buf = Buffer.alloc(size - this.pos);
      await fh.read(buf, 0, buf.length, this.pos);
      this.pos = size;
      const lines = (this.partial + buf.toString('utf8')).split('\n');
      this.partial = lines.pop() ?? '';
      return lines;
    } finally {
      await fh.close();
    }
  }
}

/** Formats CRI log lines as the request asks (timestamps, since) and writes them up to limitBytes. */
class LogWriter {
  private sent = 0;
  private readonly timestamps: boolean;
  private readonly since: number | undefined;
  private readonly limitBytes: number | undefined;
  constructor(
    private readonly res: ServerResponse,
    q: URLSearchParams,
  ) {
    this.timestamps = queryBool(q, 'timestamps');
    this.since = q.has('sinceSeconds')
      ? Date.now() - Number(q.get('sinceSeconds')) * 1000
      : q.has('sinceTime')
        ? Date.parse(q.get('sinceTime')!)
        : undefined;
    this.limitBytes = q.has('limitBytes') ? Number(q.get('limitBytes')) : undefined;
  }

  /** `<time> <stream> <F|P> <text>` → the text (with its time), or undefined when filtered out. */
  format(line: string): string | undefined {
    const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s.exec(line);
    if (!m) return undefined;
    if (this.since !== undefined && Date.parse(m[1]!) < this.since) return undefined;
    return `${this.timestamps ? `${m[1]!} ` : ''}${m[4]!}${m[3] === 'F' ? '\n' : ''}`;
  }

  /** Writes (part of) the text; false once limitBytes is reached. */
  emit(s: string): boolean {
    if (this.limitBytes !== undefined) {
      if (this.sent >= this.limitBytes) return false;
      s = Buffer.from(s)
        .subarray(0, this.limitBytes - this.sent)
        .toString('utf8');
    }
    this.sent += Buffer.byteLength(s);
    this.res.write(s);
    return true;
  }
}

type WatchWrite = (type: string, obj: Obj) => void;

/** Writes watch events as JSON lines; objects as Tables when `tableObjects` (includeObject) is set. */
function watchWriter(res: { write(s: string): unknown }, key: string, tableObjects: string | undefined): WatchWrite {
  return (type, obj) => {
    const o =
      tableObjects !== undefined && type !== 'ERROR' && type !== 'BOOKMARK'
        ? toTable(key, [obj], { resourceVersion: obj.metadata.resourceVersion }, tableObjects)
        : obj;
    res.write(`${JSON.stringify({ type, object: o })}\n`);
  };
}

/** Store events as a selector-filtered watch sees them: objects moving out of the selector arrive as DELETED. */
function watchDelivery(key: string, inScope: (o: Obj) => boolean, match: (o: Obj) => boolean, write: WatchWrite): (e: StoreEvent) => void {
  return (e) => {
    if (e.res !== key || !inScope(e.obj)) return;
    const now = match(e.obj);
    const before = e.prev ? match(e.prev) : false;
    if (e.type === 'ADDED') {
      if (now) write('ADDED', e.obj);
    } else if (e.type === 'MODIFIED') {
      if (now && before) write('MODIFIED', e.obj);
      else if (now && !before) write('ADDED', e.obj);
      else if (!now && before) write('DELETED', e.obj);
    } else if (e.type === 'DELETED') {
      if (before || now) write('DELETED', e.obj);
    }
  };
}
