/** --schedule: intervals (parsed by schedule_spec.ts) and cron expressions (croner's), as run times. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedule, ScheduleError } from '../../src/backup/schedule_spec.js';

const at = (iso: string) => new Date(iso);

describe('interval schedules', () => {
  it('reads every N with a unit, in any of its spellings', () => {
    const cases: Array<[string, number]> = [
      ['every 2s', 2_000],
      ['every 6h', 6 * 3_600_000],
      ['every 30m', 30 * 60_000],
      ['every 1d', 86_400_000],
      ['Every 90 minutes', 90 * 60_000],
      ['  every   3 hours ', 3 * 3_600_000],
    ];
    for (const [spec, ms] of cases) {
      const schedule = parseSchedule(spec);
      assert.equal(schedule.kind, 'interval', spec);
      const now = at('2026-11-21T02:00:00.000Z');
      assert.equal(schedule.firstAfter(now)?.getTime(), now.getTime() + ms, spec);
    }
    assert.equal((parseSchedule('  every   3 hours ')).spec, 'every 3 hours');
  });

  it('counts from the previous run, and skips the times that passed while a run lasted', () => {
    const schedule = parseSchedule('every 2s');
    const anchor = at('2026-11-21T02:00:02.000Z');
    // A run that ended within its period: the next is one period after it began.
    assert.deepEqual(schedule.firstAfter(at('2026-11-21T02:00:03.100Z'), anchor), at('2026-11-21T02:00:04.000Z'));
    // A run that lasted 5.5 s: 04 and 06 are gone; 08 is the first ahead, not a burst of catch-up runs.
    assert.deepEqual(schedule.firstAfter(at('2026-11-21T02:00:07.500Z'), anchor), at('2026-11-21T02:00:08.000Z'));
    // Exactly on a run time: that one has begun, the next is one period on.
    assert.deepEqual(schedule.firstAfter(at('2026-11-21T02:00:04.000Z'), anchor), at('2026-11-21T02:00:06.000Z'));
  });

  it('refuses what is not an interval, saying what is', () => {
    for (const spec of ['every', 'every 0s', 'every 2', 'every 2 fortnights', 'every 1.5h', 'every -2s', '']) {
      assert.throws(() => parseSchedule(spec), (err: unknown) => {
        assert.ok(err instanceof ScheduleError, spec);
        assert.match(err.message, /every 6h/, spec);
        return true;
      });
    }
  });
});

describe('cron schedules', () => {
  it('refuses a date: a schedule repeats', () => {
    assert.throws(() => parseSchedule('2026-11-21T02:00:00'), /looks like a date; a schedule repeats/);
  });

  it('gives the run times croner gives: five fields to the minute, six to the second', () => {
    const sixHourly = parseSchedule('0 */6 * * *');
    assert.equal(sixHourly.kind, 'cron');
    // Local time, as cron's: the test builds the expected times in local time too.
    const local = (h: number, m = 0, s = 0) => new Date(2026, 10, 21, h, m, s);
    assert.deepEqual(sixHourly.firstAfter(local(2)), local(6));
    assert.deepEqual(sixHourly.firstAfter(local(5, 59, 59)), local(6));
    assert.deepEqual(sixHourly.firstAfter(local(6)), local(12));
    const everyTwoSeconds = parseSchedule('*/2 * * * * *');
    assert.deepEqual(everyTwoSeconds.firstAfter(local(2, 0, 0)), local(2, 0, 2));
    assert.deepEqual(everyTwoSeconds.firstAfter(new Date(local(2, 0, 1).getTime() + 999)), local(2, 0, 2));
    const daily = parseSchedule('@daily');
    assert.deepEqual(daily.firstAfter(local(2)), new Date(2026, 10, 22, 0, 0, 0));
  });

  it('refuses an expression croner cannot read, with croner\'s reason, and one that never fires', () => {
    assert.throws(() => parseSchedule('61 * * * *'), /--schedule '61 \* \* \* \*' is neither an interval .* nor a cron expression .*: CronPattern: Invalid value for minute: 61/);
    assert.throws(() => parseSchedule('1 2 3 4 5 6 7'), /neither an interval/);
    assert.throws(() => parseSchedule('0 0 30 2 *'), /--schedule '0 0 30 2 \*' never fires/);
  });
});
