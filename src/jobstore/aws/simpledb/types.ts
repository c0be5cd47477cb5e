/** The values the SimpleDB client takes and returns (re-exported by `client.ts`). */
export interface SdbAttribute {
  name: string;
  value: string;
}
export interface SdbPutAttribute {
  name: string;
  value: string;
  replace?: boolean;
}
export type SdbExpected = { name: string; value: string } | { name: string; exists: false };
export interface SdbItem {
  name: string;
  attributes: SdbAttribute[];
}
export interface SdbDomainMetadata {
  itemCount: number;
  attributeNameCount: number;
  attributeValueCount: number;
  itemNamesSizeBytes: number;
  attributeNamesSizeBytes: number;
  attributeValuesSizeBytes: number;
  /** seconds since the epoch, as SimpleDB reports it */
  timestamp: number;
}
/** An attribute to delete: all its values, or only `value`. */
export interface SdbDeleteAttribute {
  name: string;
  value?: string;
}
