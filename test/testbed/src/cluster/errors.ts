/** Status bodies shaped as a real API server's. */
import { qualifiedKind, qualifiedResource, type ResourceInfo } from './resources.js';
import type { Cause } from './validate.js';

export class ApiError extends Error {
  headers: Record<string, string> = {};
  constructor(
    public code: number,
    public reason: string,
    message: string,
    public details?: Record<string, unknown>,
  ) {
    super(message);
  }
  /** The same error answered with these extra headers (e.g. Retry-After). */
  withHeaders(headers: Record<string, string>): this {
    this.headers = headers;
    return this;
  }
  status(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

function det(info: ResourceInfo, name?: string): Record<string, unknown> {
  return { ...(name !== undefined ? { name } : {}), ...(info.group ? { group: info.group } : {}), kind: info.plural };
}
export const notFound = (info: ResourceInfo, name: string): ApiError =>
  new ApiError(404, 'NotFound', `${qualifiedResource(info)} "${name}" not found`, det(info, name));
export const alreadyExists = (info: ResourceInfo, name: string): ApiError =>
  new ApiError(409, 'AlreadyExists', `${qualifiedResource(info)} "${name}" already exists`, det(info, name));
export const conflict = (
  info: ResourceInfo,
  name: string,
  why = 'the object has been modified; please apply your changes to the latest version and try again',
): ApiError =>
  new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(info)} "${name}": ${why}`, det(info, name));
export const badRequest = (msg: string): ApiError => new ApiError(400, 'BadRequest', msg);
export const invalid = (info: ResourceInfo, name: string, causes: Cause[]): ApiError => {
  const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const msg = `${qualifiedKind(info)} "${name}" is invalid: ${list.length === 1 ? list[0]! : `[${list.join(', ')}]`}`;
  return new ApiError(422, 'Invalid', msg, { name, ...(info.group ? { group: info.group } : {}), kind: info.kind, causes });
};
export const forbidden = (info: ResourceInfo, name: string | undefined, why: string): ApiError =>
  new ApiError(403, 'Forbidden', `${qualifiedResource(info)}${name ? ` "${name}"` : ''} is forbidden: ${why}`, det(info, name));
export const methodNotAllowed = (): ApiError =>
  new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});
export const notFoundPath = (): ApiError => new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
