/** The HTTPS front end: routing, authn/authz, impersonation, REST verbs, faults and counters (discovery, watches, logs, reviews and subresources in their own modules). */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, methodNotAllowed, notFoundPath } from './errors.js';
import { findResource, gvString, resKey, type ResourceInfo } from './resources.js';
import type { Registry } from './registry.js';
import { clone, matchRequirements, parseLabelSelector, SelectorError, type Obj } from './store.js';
import { authorize, forbiddenError, type Attributes, type Authenticator, type User } from './auth.js';
import { toTable } from './tables.js';
import { compileFieldSelector } from './fields.js';
import { decodeProtobuf } from './proto.js';
import { discovery, type Reply } from './discovery.js';
import { review } from './reviews.js';
import { createSubresource } from './subresources.js';
import type { Faults } from './faults.js';
import { queryBool } from './query.js';
import { servePodLog } from './podLogs.js';
import { Watches, type OpenWatch } from './watch.js';
import { enforceOwnerReferencePermissions } from './admission/ownerReferences.js';

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

export type { OpenWatch } from './watch.js';

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
  private readonly watches: Watches;
  private sockets = new Set<import('node:stream').Duplex>();
  constructor(private d: ApiServerDeps) {
    this.watches = new Watches(d);
  }

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
    this.watches.stopAll();
    if (!this.server) return;
    const closed = new Promise<void>((r) => this.server!.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Ends matching watches: without an error (the client simply sees the stream end) or with 410 Expired. */
  endWatches(filter: (resource: string) => boolean, expire: boolean): number {
    return this.watches.end(filter, expire);
  }

  watchCount(resource?: string): number {
    return this.watches.count(resource);
  }

  openWatches(resource?: string): OpenWatch[] {
    return this.watches.open(resource);
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
  private reply(res: ServerResponse, r: Reply): void {
    if (!r.text) {
      this.send(res, 200, r.body, r.headers ? { headers: r.headers } : {});
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(String(r.body));
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
        if (method !== 'GET') throw methodNotAllowed();
        if (this.d.auth.issuer.serve(path, res)) return;
        this.reply(res, discovery({ path, groupVersion: r?.nonResource ? r : undefined, url, port: this.port }));
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
        this.watches.serve({ ...c, match: this.selectors(c.info, c.q), tables: this.wantsTable(c.req) });
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
      await servePodLog({ req: c.req, res: c.res, q: c.q, logDir: this.d.logDir, store: this.d.registry.store }, o);
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
      this.send(c.res, 201, await createSubresource({ ...this.d, info: c.info, ns: c.ns, name: c.route.name!, sub: c.route.sub! }, body));
      return;
    }
    if (c.info.virtual) {
      this.send(c.res, 201, review({ store: this.d.registry.store, info: c.info, body, user: c.user }));
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
}
