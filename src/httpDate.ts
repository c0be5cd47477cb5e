/**
 * HTTP dates (RFC 9110 §5.6.7) and the `Retry-After` header (§10.2.3). A recipient accepts all
 * three date formats: the preferred IMF-fixdate and the obsolete RFC 850 and asctime forms.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MON = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MON} (\\d{4}) ${TIME} GMT$`);
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MON}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MON} ([ \\d]\\d) ${TIME} (\\d{4})$`);

interface DateParts {
  year: number;
  month: string;
  day: string;
  h: string;
  m: string;
  s: string;
}

function toMs(p: DateParts): number | undefined {
  const [day, h, m, s] = [p.day, p.h, p.m, p.s].map((x) => Number(x.trim())) as [number, number, number, number];
  const month = MONTHS.indexOf(p.month);
  if (day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return undefined;
  const ms = Date.UTC(p.year, month, day, h, m, Math.min(s, 59));
  // Reject days the month does not have (31 Feb would roll over into March).
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}

/** A two-digit year more than 50 years ahead is the latest past year ending in those digits. */
function fullYear(yy: number, now: number): number {
  const thisYear = new Date(now).getUTCFullYear();
  let year = thisYear - (thisYear % 100) + yy;
  if (year > thisYear + 50) year -= 100;
  return year;
}

/** Milliseconds since the epoch for an HTTP date, or undefined if `text` is not one. */
export function parseHttpDate(text: string, now = Date.now()): number | undefined {
  const v = text.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m) return toMs({ day: m[1]!, month: m[2]!, year: Number(m[3]), h: m[4]!, m: m[5]!, s: m[6]! });
  m = RFC850.exec(v);
  if (m) return toMs({ day: m[1]!, month: m[2]!, year: fullYear(Number(m[3]), now), h: m[4]!, m: m[5]!, s: m[6]! });
  m = ASCTIME.exec(v);
  if (m) return toMs({ month: m[1]!, day: m[2]!, h: m[3]!, m: m[4]!, s: m[5]!, year: Number(m[6]) });
  return undefined;
}

/**
 * How long a `Retry-After` value asks to wait, in milliseconds: delta-seconds, or the time until
 * an HTTP date (0 for a date already past). Undefined for anything else.
 */
export function retryAfterMs(value: string, now = Date.now()): number | undefined {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = parseHttpDate(v, now);
  return at === undefined ? undefined : Math.max(0, at - now);
}
