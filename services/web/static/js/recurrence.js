// Recurrence in plain words: the editor's model of a rule (frequency,
// interval, weekdays, "the first Saturday of the month", how it ends), the
// RFC 5545 RRULE it stands for, and a summary sentence from the catalogs.
// Also the timezone arithmetic the calendar needs (local parts of an
// instant, a local wall-clock time as an instant), with Intl only.

import { t, tn, state, formatDate } from './core.js';

export const WEEKDAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];
export const ORDINALS = [1, 2, 3, 4, -1];

// ---------- time zones ----------

const partsCache = new Map();
function partsFormat(tz) {
  if (!partsCache.has(tz)) {
    let f;
    try {
      f = new Intl.DateTimeFormat('en-CA', {
        timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
      });
    } catch {
      f = new Intl.DateTimeFormat('en-CA', { hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    }
    partsCache.set(tz, f);
  }
  return partsCache.get(tz);
}

// localParts gives the wall-clock date ("2026-12-05") and minutes since
// midnight of an instant in timezone tz.
export function localParts(instant, tz) {
  const d = instant instanceof Date ? instant : new Date(instant);
  const p = Object.fromEntries(partsFormat(tz).formatToParts(d).map((x) => [x.type, x.value]));
  const hour = Number(p.hour) % 24;
  return { date: `${p.year}-${p.month}-${p.day}`, minutes: hour * 60 + Number(p.minute), seconds: Number(p.second) };
}

// zonedToUTC turns a local wall-clock time in tz into an instant.
export function zonedToUTC(ymd, minutes, tz) {
  const [y, m, d] = ymd.split('-').map(Number);
  const want = Date.UTC(y, m - 1, d, 0, minutes);
  let guess = want;
  for (let i = 0; i < 3; i += 1) {
    const p = localParts(new Date(guess), tz);
    const [py, pm, pd] = p.date.split('-').map(Number);
    const seen = Date.UTC(py, pm - 1, pd, 0, p.minutes, p.seconds);
    if (seen === want) break;
    guess += want - seen;
  }
  return new Date(guess);
}

// weekdayOf is 0 for Monday … 6 for Sunday of a local date.
export function weekdayOf(ymd) {
  return (new Date(`${ymd}T12:00:00Z`).getUTCDay() + 6) % 7;
}

export function weekdayName(code, style = 'long') {
  const i = WEEKDAYS.indexOf(code);
  const d = new Date(Date.UTC(2024, 0, 1 + i, 12)); // 1 Jan 2024 was a Monday
  return new Intl.DateTimeFormat(state.locale, { weekday: style, timeZone: 'UTC' }).format(d);
}

// ---------- the model ----------

// defaultRule is a rule that does not repeat.
export function defaultRule(startYmd) {
  const wd = WEEKDAYS[weekdayOf(startYmd || '2026-01-05')];
  const day = Number((startYmd || '2026-01-01').slice(8, 10));
  return {
    freq: 'none', interval: 1, byday: [wd], monthly: 'nth', nth: Math.min(Math.ceil(day / 7), 4), weekday: wd, monthday: day,
    ends: 'never', until: '', count: 10, raw: '',
  };
}

// parseRRULE reads an RRULE into the editor's model; a rule the editor
// cannot show (YEARLY, BYSETPOS, …) becomes freq "custom" and is kept whole.
export function parseRRULE(rrule, startYmd) {
  const m = defaultRule(startYmd);
  if (!rrule) return m;
  const parts = Object.fromEntries(rrule.split(';').filter(Boolean).map((p) => {
    const i = p.indexOf('=');
    return [p.slice(0, i).toUpperCase(), p.slice(i + 1)];
  }));
  const known = new Set(['FREQ', 'INTERVAL', 'BYDAY', 'BYMONTHDAY', 'UNTIL', 'COUNT', 'WKST']);
  const custom = () => ({ ...m, freq: 'custom', raw: rrule });
  if (Object.keys(parts).some((k) => !known.has(k))) return custom();
  const freq = (parts.FREQ ?? '').toLowerCase();
  if (!['daily', 'weekly', 'monthly'].includes(freq)) return custom();
  m.freq = freq;
  m.interval = Math.max(1, Number(parts.INTERVAL ?? 1) || 1);
  if (parts.UNTIL) {
    m.ends = 'until';
    m.until = `${parts.UNTIL.slice(0, 4)}-${parts.UNTIL.slice(4, 6)}-${parts.UNTIL.slice(6, 8)}`;
  } else if (parts.COUNT) {
    m.ends = 'count';
    m.count = Number(parts.COUNT) || 1;
  }
  const days = parts.BYDAY ? parts.BYDAY.split(',') : [];
  if (freq === 'daily' && (days.length || parts.BYMONTHDAY)) return custom();
  if (freq === 'weekly') {
    if (parts.BYMONTHDAY || days.some((d) => !WEEKDAYS.includes(d))) return custom();
    if (days.length) m.byday = days;
  }
  if (freq === 'monthly') {
    if (parts.BYMONTHDAY) {
      if (days.length || !/^\d+$/.test(parts.BYMONTHDAY)) return custom();
      m.monthly = 'day';
      m.monthday = Number(parts.BYMONTHDAY);
    } else if (days.length === 1) {
      const mm = /^(-1|[1-4])(MO|TU|WE|TH|FR|SA|SU)$/.exec(days[0]);
      if (!mm) return custom();
      m.monthly = 'nth';
      m.nth = Number(mm[1]);
      m.weekday = mm[2];
    } else if (days.length) {
      return custom();
    } else {
      m.monthly = 'day';
    }
  }
  return m;
}

// untilValue is the UNTIL of a rule ending on a local date: a DATE for
// all-day events, else the UTC instant of the end of that local day.
function untilValue(ymd, allDay, tz) {
  if (allDay) return ymd.replaceAll('-', '');
  const end = zonedToUTC(ymd, 24 * 60 - 1, tz);
  return `${end.toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
}

// buildRRULE is the RRULE of the model ('' when it does not repeat).
export function buildRRULE(m, { allDay = false, tz = 'UTC' } = {}) {
  if (m.freq === 'none') return '';
  if (m.freq === 'custom') return m.raw.trim();
  const out = [`FREQ=${m.freq.toUpperCase()}`];
  if (m.interval > 1) out.push(`INTERVAL=${m.interval}`);
  if (m.freq === 'weekly' && m.byday.length) out.push(`BYDAY=${WEEKDAYS.filter((d) => m.byday.includes(d)).join(',')}`);
  if (m.freq === 'monthly') {
    if (m.monthly === 'nth') out.push(`BYDAY=${m.nth}${m.weekday}`);
    else out.push(`BYMONTHDAY=${m.monthday}`);
  }
  if (m.ends === 'until' && m.until) out.push(`UNTIL=${untilValue(m.until, allDay, tz)}`);
  if (m.ends === 'count' && m.count > 0) out.push(`COUNT=${m.count}`);
  return out.join(';');
}

// matchesStart tells whether the local date is an occurrence day of the rule
// (the API wants the start to be the rule's first occurrence).
export function matchesStart(m, ymd) {
  if (!ymd || m.freq === 'none' || m.freq === 'custom' || m.freq === 'daily') return true;
  const wd = WEEKDAYS[weekdayOf(ymd)];
  if (m.freq === 'weekly') return !m.byday.length || m.byday.includes(wd);
  const day = Number(ymd.slice(8, 10));
  if (m.monthly === 'day') return day === m.monthday;
  if (wd !== m.weekday) return false;
  if (m.nth === -1) {
    const [y, mo] = ymd.split('-').map(Number);
    const last = new Date(Date.UTC(y, mo, 0)).getUTCDate();
    return day + 7 > last;
  }
  return Math.ceil(day / 7) === m.nth;
}

// firstMatch is the first local date on or after ymd that matches the rule.
export function firstMatch(m, ymd) {
  let d = new Date(`${ymd}T12:00:00Z`);
  for (let i = 0; i < 400; i += 1) {
    const s = d.toISOString().slice(0, 10);
    if (matchesStart(m, s)) return s;
    d = new Date(d.getTime() + 86_400_000);
  }
  return ymd;
}

// feminineDay tells whether the language gives the weekday feminine gender
// (Italian: "la domenica", but "il sabato").
function feminineDay(weekday) {
  return t('calendar.rrule.feminine_days').split(',').map((s) => s.trim()).includes(weekday);
}

function ordinal(n, weekday) {
  // Some languages inflect the ordinal by the weekday's gender (Italian: "la prima domenica").
  if (feminineDay(weekday)) {
    switch (n) {
      case 1: return t('calendar.rrule.nth_f.first');
      case 2: return t('calendar.rrule.nth_f.second');
      case 3: return t('calendar.rrule.nth_f.third');
      case 4: return t('calendar.rrule.nth_f.fourth');
      default: return t('calendar.rrule.nth_f.last');
    }
  }
  switch (n) {
    case 1: return t('calendar.rrule.nth.first');
    case 2: return t('calendar.rrule.nth.second');
    case 3: return t('calendar.rrule.nth.third');
    case 4: return t('calendar.rrule.nth.fourth');
    default: return t('calendar.rrule.nth.last');
  }
}

export function ordinalLabel(n, weekday = '') { return ordinal(n, weekday); }

// theOrdinal is the ordinal with its article, which agrees with the weekday
// and may elide before a vowel (Italian: "il primo sabato", "l'ultima domenica").
function theOrdinal(n, weekday) {
  if (feminineDay(weekday)) {
    switch (n) {
      case 1: return t('calendar.rrule.the_nth_f.first');
      case 2: return t('calendar.rrule.the_nth_f.second');
      case 3: return t('calendar.rrule.the_nth_f.third');
      case 4: return t('calendar.rrule.the_nth_f.fourth');
      default: return t('calendar.rrule.the_nth_f.last');
    }
  }
  switch (n) {
    case 1: return t('calendar.rrule.the_nth.first');
    case 2: return t('calendar.rrule.the_nth.second');
    case 3: return t('calendar.rrule.the_nth.third');
    case 4: return t('calendar.rrule.the_nth.fourth');
    default: return t('calendar.rrule.the_nth.last');
  }
}

function listOf(words) {
  try { return new Intl.ListFormat(state.locale, { type: 'conjunction' }).format(words); } catch { return words.join(', '); }
}

// summary says the rule in plain words: "Every first Saturday of the month,
// until 31 Dec 2026".
export function summary(m) {
  let rule;
  switch (m.freq) {
    case 'none': return t('calendar.rrule.once');
    case 'custom': return t('calendar.rrule.custom', { rule: m.raw });
    case 'daily':
      rule = m.interval > 1 ? tn('calendar.rrule.every_n_days', m.interval) : t('calendar.rrule.every_day');
      break;
    case 'weekly': {
      const days = listOf(WEEKDAYS.filter((d) => m.byday.includes(d)).map((d) => weekdayName(d)));
      if (!days) rule = m.interval > 1 ? tn('calendar.rrule.every_n_weeks', m.interval) : t('calendar.rrule.every_week');
      else rule = m.interval > 1 ? tn('calendar.rrule.every_n_weeks_on', m.interval, { days }) : t('calendar.rrule.every_week_on', { days });
      break;
    }
    case 'monthly':
      if (m.monthly === 'nth') {
        const weekday = weekdayName(m.weekday);
        rule = m.interval > 1
          ? tn('calendar.rrule.every_n_months_nth', m.interval, { the_nth: theOrdinal(m.nth, m.weekday), weekday })
          : t('calendar.rrule.every_month_nth', { nth: ordinal(m.nth, m.weekday), weekday });
      } else {
        rule = m.interval > 1 ? tn('calendar.rrule.every_n_months_day', m.interval, { day: m.monthday }) : t('calendar.rrule.every_month_day', { day: m.monthday });
      }
      break;
    default: return '';
  }
  if (m.ends === 'until' && m.until) return t('calendar.rrule.until', { rule, date: formatDate(m.until, 'medium') });
  if (m.ends === 'count' && m.count > 0) return tn('calendar.rrule.times', m.count, { rule });
  return rule;
}
