// One page of stored records, newest first (createdAt, then id), and the
// opaque cursor naming the last record of the page: how the lists served from
// storage (weights, models) page, in the API's one list shape {items, nextCursor}.
import { AppError } from "../errors.js";

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

type Position = { createdAt: string; id: string };

function newerFirst(a: Position, b: Position): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** Ids are random, so the cursor carries the creation time too. */
function encodeCursor(record: Position): string {
  return Buffer.from(`${record.createdAt} ${record.id}`).toString("base64url");
}

/** The position a cursor stands for, or null when it is not one of ours. */
function decodeCursor(cursor: string, isId: (id: string) => boolean): Position | null {
  const [createdAt, id, ...rest] = Buffer.from(cursor, "base64url").toString("utf8").split(" ");
  if (rest.length > 0 || !id || !isId(id) || Number.isNaN(Date.parse(createdAt))) return null;
  return { createdAt, id };
}

/** `records` in any order; a cursor that is not a `nextCursor` is INVALID_CURSOR. */
export function newestFirstPage<T extends Position>(
  records: T[],
  limit: number,
  cursor: string | undefined,
  isId: (id: string) => boolean,
): Page<T> {
  const after = cursor === undefined ? undefined : decodeCursor(cursor, isId);
  if (after === null) throw new AppError("INVALID_CURSOR", "cursor is not one this API returned", { cursor });
  const rest = [...records].sort(newerFirst).filter((r) => !after || newerFirst(after, r) < 0);
  const items = rest.slice(0, limit);
  return { items, nextCursor: rest.length > limit ? encodeCursor(items[items.length - 1]) : null };
}
