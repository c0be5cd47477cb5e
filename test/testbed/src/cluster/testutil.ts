/** Small helpers shared by the test cluster's own tests. */
import { execFile } from 'node:child_process';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import * as k8s from '@kubernetes/client-node';

export function clients(kubeconfigPath: string): {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  rbac: k8s.RbacAuthorizationV1Api;
} {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
  };
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs the machine's kubectl against a kubeconfig. */
export function kubectl(kubeconfig: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = execFile('kubectl', args, { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({
        code: err
          ? typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number'
            ? (err as unknown as { code: number }).code
            : 1
          : 0,
        stdout,
        stderr,
      });
    });
    if (input !== undefined) {
      p.stdin!.end(input);
    }
  });
}

/**
 * Lets anyone read the service-account issuer's discovery documents (an STS fetches them
 * anonymously), with the binding the Kubernetes documentation gives.
 */
export function allowAnonymousIssuerDiscovery(kubeconfig: string): ReturnType<typeof kubectl> {
  return kubectl(kubeconfig, [
    'create',
    'clusterrolebinding',
    'oidc-reviewer',
    '--clusterrole=system:service-account-issuer-discovery',
    '--group=system:unauthenticated',
  ]);
}

/** A Kubernetes Status, as error answers carry it; other fields as sent. */
export interface ApiStatus {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    retryAfterSeconds?: number;
    causes?: { reason?: string; message?: string; field?: string }[];
  };
  [field: string]: unknown;
}

/** Parses an ApiException body (client-node 2.x keeps it as text). */
export function statusOf(e: unknown): { code: number; body: ApiStatus } {
  const ex = e as { code?: number; body?: unknown };
  const body = typeof ex.body === 'string' ? (JSON.parse(ex.body) as ApiStatus) : (ex.body as ApiStatus);
  return { code: ex.code ?? 0, body };
}

/**
 * A Job of one busybox container. Its pods have a 2 s grace period: a SIGTERM that reaches a
 * pod's init before it has set its handler is ignored, as PID 1's is on a real node, and the pod
 * then goes at the grace period's end — 2 s, not the default 30 s, in tests about something else.
 */
export function simpleJob(name: string, command: string[], extra: Partial<k8s.V1JobSpec> = {}): k8s.V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels: { app: 'cluster-test' } },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 2,
          containers: [{ name: 'main', image: 'busybox:1.36', command }],
        },
      },
      ...extra,
    },
  } as k8s.V1Job;
}

export async function jobDone(batch: k8s.BatchV1Api, ns: string, name: string, timeoutMs = 20_000): Promise<k8s.V1Job> {
  return until(
    `job ${name} to finish`,
    async () => {
      const j = await batch.readNamespacedJob({ namespace: ns, name });
      return (j.status?.conditions ?? []).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')
        ? j
        : undefined;
    },
    timeoutMs,
  );
}

export interface RawAnswer {
  code: number;
  /** the answer's JSON object (a Status for errors; `{}` when the answer is not a JSON object) */
  body: ApiStatus;
  text: string;
  headers: IncomingHttpHeaders;
}

function parseObject(text: string): ApiStatus {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as ApiStatus) : {};
  } catch {
    return {};
  }
}

/** A raw HTTPS request to the cluster with the kubeconfig's credentials (client-node drops unknown fields before sending). */
export function raw(kc: k8s.KubeConfig, method: string, path: string, body?: unknown): Promise<RawAnswer> {
  const cluster = kc.getCurrentCluster()!;
  const url = new URL(path, cluster.server);
  const ca = Buffer.from(cluster.caData!, 'base64');
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca,
        headers: { Authorization: `Bearer ${kc.getCurrentUser()!.token!}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ code: res.statusCode ?? 0, body: parseObject(text), text, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
