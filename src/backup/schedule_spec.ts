/**
 * When a scheduled job (backup_job.ts) takes its backups: `hotbackup serve --schedule`.
 * Two kinds of spec:
 * - an interval, `every 6h`, `every 30m`, `every 2s`, `every 1d`: a run every so long,
 *   counted from the first run's time (so a run that takes longer than the interval moves
 *   the next one to the next whole multiple, never right after it: no catch-up burst);
 * - a cron expression, `0 2 * * *` (five fields, or six with seconds first, or a nickname
 *   such as `@daily`), read in the proxy host's local time zone as cron reads it
 *   (crontab(5); `TZ=UTC` in the proxy's environment makes it UTC). The expression is
 *   parsed and evaluated by croner (npm `croner`: no dependencies, DST handled, its
 *   patterns those of the Open Cron Pattern Standard), not here.
 */
import { Cron } from 'croner';

export interface Schedule {
  /** As given, trimmed: what backupStatus shows. */
  readonly spec: string;
  readonly kind: 'interval' | 'cron';
  /**
   * The first run time strictly after `now`. `anchor` is the time of the previous run
   * of this schedule, when there was one: intervals count from it. Undefined when the
   * schedule never fires again (a cron expression such as `0 0 30 2 *`).
   */
  firstAfter(now: Date, anchor?: Date): Date | undefined;
}

/** The units of `every N<unit>`, in milliseconds. */
const INTERVAL_UNITS: ReadonlyMap<string, number> = new Map([
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u) => [u, 1000] as const),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u) => [u, 60_000] as const),
  ...['h', 'hr', 'hrs', 'hour', 'hours'].map((u) => [u, 3_600_000] as const),
  ...['d', 'day', 'days'].map((u) => [u, 86_400_000] as const),
]);

const INTERVAL = /^every\s+(\d+)\s*([a-z]+)$/i;

/** `spec` is not a schedule: the message says what is accepted. */
export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

function intervalSchedule(spec: string, everyMs: number): Schedule {
  return {
    spec,
    kind: 'interval',
    firstAfter(now, anchor) {
      if (anchor === undefined || anchor.getTime() > now.getTime()) return new Date(now.getTime() + everyMs);
      // The next multiple of the interval after `now`: slots missed while a run lasted are skipped.
      const periods = Math.floor((now.getTime() - anchor.getTime()) / everyMs) + 1;
      return new Date(anchor.getTime() + periods * everyMs);
    },
  };
}

function cronSchedule(spec: string): Schedule {
  // croner takes a string with ':' as a date to run once at (croner.ts, Cron's constructor): not a schedule.
  if (spec.includes(':')) throw new ScheduleError(`--schedule '${spec}' looks like a date; a schedule repeats: give a cron expression ('0 2 * * *') or an interval ('every 6h')`);
  let cron: Cron;
  try {
    // paused and without a function: croner only evaluates, it schedules nothing itself.
    cron = new Cron(spec, { paused: true, mode: '5-or-6-parts' });
  } catch (err) {
    throw new ScheduleError(
      `--schedule '${spec}' is neither an interval ('every 6h', 'every 30m', 'every 2s') nor a cron expression (five fields, '0 2 * * *', or six with seconds first): ${(err as Error).message}`,
    );
  }
  const schedule: Schedule = {
    spec,
    kind: 'cron',
    firstAfter(now) {
      return cron.nextRun(now) ?? undefined;
    },
  };
  if (schedule.firstAfter(new Date()) === undefined) throw new ScheduleError(`--schedule '${spec}' never fires: no time matches it`);
  return schedule;
}

/** Parses `--schedule`; throws a ScheduleError that says what is accepted. */
export function parseSchedule(given: string): Schedule {
  const spec = given.trim().replace(/\s+/g, ' ');
  if (spec === '') throw new ScheduleError("--schedule needs a cron expression ('0 2 * * *') or an interval ('every 6h')");
  if (/^every\b/i.test(spec)) {
    const match = INTERVAL.exec(spec);
    const unitMs = match === null ? undefined : INTERVAL_UNITS.get((match[2] ?? '').toLowerCase());
    const count = Number(match?.[1]);
    if (unitMs === undefined || !Number.isSafeInteger(count) || count < 1) {
      throw new ScheduleError(`--schedule '${spec}': an interval is 'every' and a whole number of at least 1 with a unit, s, m, h or d: 'every 6h', 'every 30m', 'every 2s'`);
    }
    return intervalSchedule(spec, count * unitMs);
  }
  return cronSchedule(spec);
}
