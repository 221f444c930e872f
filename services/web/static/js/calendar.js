// The city's calendar: a week of market days and events, an agenda on phones
// and a 7-day grid on wide screens, from one accessible structure: a section
// per day with a heading and a list of its entries (CSS lays the sections out
// as grid columns and places each entry by its local start and end in the
// city's timezone). Filters by place, category and words (the choices and
// their counts come from the calendar API); this weekend; "add to my
// calendar" and subscribe links. The week is one tab stop: arrow keys move
// between days and entries (a roving tabindex), Enter opens an entry.
//
// Route: #/calendar/<city>[/<yyyy-mm-dd>]   (the week holding that date)
//
// Hooks:
//   #calendar[data-from][data-to][data-timezone][data-mode="week"|"weekend"]
//   #week                                    the grid (display: grid on wide screens)
//   #week section.cal-day[data-date]         one day; h2 is its full date
//   #week li.cal-entry[data-entry-id][data-event-id][data-kind][data-date]
//        [data-start][data-end][data-all-day][data-status][data-category]   data-start/end are local HH:MM
//   #week [data-grid-stop]                   the keyboard's stops: each day's h2, then its entries' buttons
//   button[data-action="prev-week"|"next-week"|"this-week"|"weekend"]
//   form[data-form="calendar-filters"] (place, category, q); options carry data-upcoming
//   #entry-detail[data-entry-id]             the chosen entry: a[data-link="ics"|"webcal-city"|
//                                            "webcal-place"|"webcal-category"|"atom"|"edit"]
//   #calendar-feeds                          the feeds of the week's filters

import { h, t, tn, tEnum, state, formatDate, addDays, collator } from './core.js';
import { api, managesCity, signedIn } from './api.js';
import { localParts, weekdayOf } from './recurrence.js';

export const CAL = '/api/v1/calendar';
// Suggestions for an event's category in the editor; the calendar's filter
// lists the categories the API has in use.
export const KNOWN_CATEGORIES = ['market', 'music', 'culture', 'food', 'kids', 'sport', 'community', 'other'];

export const cityOf = (slug) => state.cities.find((c) => c.slug === slug);
export const enc = encodeURIComponent;

export function todayIn(tz) {
  try { return localParts(new Date(), tz).date; } catch { return new Date().toISOString().slice(0, 10); }
}

export function weekStart(ymd) {
  return addDays(ymd, -weekdayOf(ymd));
}

export const hhmm = (min) => `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;

export function categoryLabel(c) {
  return tEnum('calendar.category', c);
}

// webcal turns a feed URL (absolute or a path) into a webcal:// link.
export function webcal(url) {
  const u = new URL(url, location.href);
  return `webcal://${u.host}${u.pathname}${u.search}`;
}

// loadPlaces is the places the calendar knows (those an event may name and
// the filter may choose), each with its upcoming count.
export async function loadPlaces(slug, signal) {
  try {
    const body = await api('GET', `${CAL}/cities/${enc(slug)}/places`, { auth: false, signal });
    return (Array.isArray(body?.items) ? body.items : []).filter((p) => p && p.id);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    return [];
  }
}

// loadCategories is the categories with something to come, with counts.
export async function loadCategories(slug, signal) {
  try {
    const body = await api('GET', `${CAL}/cities/${enc(slug)}/categories`, { auth: false, signal });
    return (Array.isArray(body?.items) ? body.items : []).filter((c) => c && typeof c.slug === 'string');
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    return [];
  }
}

// fetchRange follows the cursor of one calendar query.
export async function fetchRange(path, query, signal) {
  let page = await api('GET', path, { auth: false, signal, query });
  const items = [...(page.items ?? [])];
  for (let i = 0; i < 10 && page.next_cursor; i += 1) {
    page = await api('GET', path, { auth: false, signal, query: { ...query, cursor: page.next_cursor } });
    items.push(...(page.items ?? []));
  }
  return { ...page, items };
}

// place an entry on the days it covers, with local minutes.
function layout(items, tz, from, to) {
  const days = new Map();
  for (let d = from; d <= to; d = addDays(d, 1)) days.set(d, { allDay: [], timed: [] });
  for (const e of items) {
    if (e.all_day) {
      const first = (e.start || '').slice(0, 10);
      const last = (e.end || first).slice(0, 10);
      for (let d = first; d && d <= last; d = addDays(d, 1)) days.get(d)?.allDay.push({ e, date: d });
      continue;
    }
    const s = localParts(e.starts_at, tz);
    const en = localParts(e.ends_at, tz);
    if (e.kind === 'market_day') {
      // Market days run for most of a day: a strip of their own above the
      // hours (with their hours as text) keeps the grid readable.
      for (let d = s.date; d <= en.date; d = addDays(d, 1)) {
        days.get(d)?.allDay.push({ e, date: d, s, en, startMin: d === s.date ? s.minutes : 0, endMin: d === en.date ? en.minutes : 24 * 60, strip: true });
      }
      continue;
    }
    for (let d = s.date; d <= en.date; d = addDays(d, 1)) {
      const startMin = d === s.date ? s.minutes : 0;
      let endMin = d === en.date ? en.minutes : 24 * 60;
      if (d === en.date && d !== s.date && endMin === 0) break; // ends at midnight
      if (endMin <= startMin) endMin = startMin + 15;
      days.get(d)?.timed.push({ e, date: d, startMin, endMin, s, en });
    }
  }
  for (const day of days.values()) {
    day.timed.sort((a, b) => a.startMin - b.startMin || b.endMin - a.endMin);
    // lanes: overlapping entries side by side
    const lanes = [];
    for (const x of day.timed) {
      let lane = lanes.findIndex((end) => end <= x.startMin);
      if (lane < 0) { lane = lanes.length; lanes.push(0); }
      lanes[lane] = x.endMin;
      x.lane = lane;
    }
    day.lanes = Math.max(1, lanes.length);
  }
  return days;
}

function timeText(x, tz) {
  const f = (iso) => new Intl.DateTimeFormat(state.locale, { hour: 'numeric', minute: '2-digit', timeZone: tz }).format(new Date(iso));
  return t('calendar.time_range', { start: f(x.e.starts_at), end: f(x.e.ends_at) });
}

function fullWhen(x, tz) {
  if (x.e.all_day) return t('calendar.all_day_on', { date: formatDate(x.date) });
  const f = new Intl.DateTimeFormat(state.locale, { dateStyle: 'full', timeStyle: 'short', timeZone: tz });
  const g = new Intl.DateTimeFormat(state.locale, { timeStyle: 'short', timeZone: tz });
  const sameDay = x.s.date === x.en.date;
  return t('calendar.when', { start: f.format(new Date(x.e.starts_at)), end: (sameDay ? g : f).format(new Date(x.e.ends_at)) });
}

function entryLabel(x, tz) {
  const e = x.e;
  const bits = [e.title, fullWhen(x, tz)];
  if (e.place_name || e.address) bits.push(e.place_name || e.address);
  if (e.kind === 'market_day') bits.push(t('calendar.market_day'));
  if (e.status === 'cancelled') bits.push(t('calendar.status.cancelled'));
  else if (e.status === 'tentative') bits.push(t('calendar.status.tentative'));
  return bits.join(', ');
}

function entryItem(ctx, x, tz) {
  const e = x.e;
  const li = h('li', {
    class: `cal-entry cal-kind-${e.kind} cal-status-${e.status}${x.e.all_day ? ' cal-allday' : ''}`,
    dataset: {
      entryId: e.id, eventId: e.event_id ?? null, kind: e.kind, date: x.date, status: e.status, category: e.category,
      allDay: e.all_day ? '1' : '0', start: e.all_day ? null : hhmm(x.startMin), end: e.all_day ? null : hhmm(x.endMin % (24 * 60)),
      strip: x.strip ? '1' : null,
    },
  },
  h('button', {
    type: 'button', class: 'cal-entry-button', 'aria-label': entryLabel(x, tz),
    'aria-expanded': ctx.state.selected === e.id ? 'true' : 'false', 'aria-controls': 'entry-detail', tabindex: '-1',
    dataset: { focusKey: `entry-${e.id}-${x.date}`, gridStop: '', gridMin: String(e.all_day || x.strip ? -1 : x.startMin) },
    onclick: () => { ctx.state.selected = ctx.state.selected === e.id ? null : e.id; ctx.repaint(); },
  },
  e.all_day ? null : h('span', { class: 'cal-time' }, timeText(x, tz)),
  h('span', { class: 'cal-title' }, e.title),
  e.kind === 'market_day' ? h('span', { class: 'cal-tag' }, t('calendar.market_day')) : null,
  e.status === 'cancelled' ? h('span', { class: 'cal-tag cal-tag-cancelled' }, t('calendar.status.cancelled')) : null,
  (e.place_name || e.address) ? h('span', { class: 'cal-place' }, e.place_name || e.address) : null));
  if (!e.all_day && !x.strip) {
    // Rows are quarter hours from the grid's first hour; CSSOM, not a style attribute (CSP).
    const first = ctx.state.firstHour * 4;
    const a = Math.max(0, Math.floor(x.startMin / 15) - first);
    const b = Math.max(a + 1, Math.ceil(x.endMin / 15) - first);
    li.style.gridRow = `${a + 1} / ${b + 1}`;
    li.style.gridColumn = `${x.lane + 1}`;
  }
  return li;
}

function feedLinks(slug, e) {
  const city = `${CAL}/cities/${enc(slug)}/calendar.ics`;
  const links = [];
  if (e.kind === 'event' && e.event_id) {
    links.push(h('li', {}, h('a', { href: `${CAL}/events/${enc(e.event_id)}/event.ics`, download: 'event.ics', dataset: { link: 'ics' } }, t('calendar.add_to_calendar'))));
  }
  links.push(h('li', {}, h('a', { href: webcal(city), dataset: { link: 'webcal-city' } }, t('calendar.subscribe_city'))));
  if (e.place_id) {
    links.push(h('li', {}, h('a', { href: webcal(`${CAL}/cities/${enc(slug)}/places/${enc(e.place_id)}/calendar.ics`), dataset: { link: 'webcal-place' } },
      t('calendar.subscribe_place', { place: e.place_name || '' }))));
  }
  if (e.category) {
    links.push(h('li', {}, h('a', { href: webcal(`${CAL}/cities/${enc(slug)}/categories/${enc(e.category)}/calendar.ics`), dataset: { link: 'webcal-category' } },
      t('calendar.subscribe_category', { category: categoryLabel(e.category) }))));
  }
  links.push(h('li', {}, h('a', { href: `${CAL}/cities/${enc(slug)}/feed.atom`, type: 'application/atom+xml', dataset: { link: 'atom' } }, t('calendar.atom_feed'))));
  return links;
}

function detail(ctx, slug, tz, items) {
  const e = items.find((x) => x.id === ctx.state.selected);
  if (!e) return h('div', { id: 'entry-detail', hidden: true });
  const s = localParts(e.starts_at, tz);
  const en = localParts(e.ends_at, tz);
  const x = { e, date: e.all_day ? (e.start || '').slice(0, 10) : s.date, s, en };
  const canEdit = e.kind === 'event' && e.editable !== false && signedIn() && managesCity(slug);
  return h('section', { id: 'entry-detail', class: 'card cal-detail', 'aria-labelledby': 'entry-detail-title', dataset: { entryId: e.id } },
    h('h2', { id: 'entry-detail-title', tabindex: '-1' }, e.title),
    h('p', {}, fullWhen(x, tz)),
    (e.place_name || e.address) ? h('p', {}, t('calendar.where', { place: e.place_name || e.address })) : null,
    e.kind === 'market_day' ? h('p', { class: 'muted' }, t('calendar.market_day_note')) : null,
    e.status !== 'confirmed' && e.kind === 'event' ? h('p', { class: 'warn' }, tEnum('calendar.status', e.status), e.cancel_reason ? ` — ${e.cancel_reason}` : '') : null,
    e.category ? h('p', {}, t('calendar.category_is', { category: categoryLabel(e.category) })) : null,
    e.organiser ? h('p', {}, t('calendar.organiser_is', { organiser: e.organiser })) : null,
    e.description ? h('p', { class: 'cal-description' }, e.description) : null,
    h('ul', { class: 'cal-links' }, feedLinks(slug, e),
      canEdit ? h('li', {}, h('a', { href: `#/manage-calendar/${enc(slug)}/${enc(e.event_id)}`, dataset: { link: 'edit' } }, t('calendar.edit_event'))) : null),
  );
}

// withCount labels a filter choice with how much is coming up there.
const withCount = (label, n) => (Number.isFinite(n) ? t('calendar.filter_choice', { label, count: n }) : label);

function filtersForm(ctx, places, categories) {
  const f = ctx.state.filters;
  const submit = (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    ctx.state.filters = { place: form.place.value, category: form.category.value, q: form.q.value.trim() };
    ctx.state.selected = null;
    ctx.reload();
  };
  return h('form', { class: 'cal-filters', dataset: { form: 'calendar-filters' }, role: 'search', 'aria-label': t('calendar.filters'), onsubmit: submit },
    h('div', { class: 'field' }, h('label', { for: 'cal-place' }, t('calendar.filter_place')),
      h('select', { id: 'cal-place', name: 'place' },
        h('option', { value: '' }, t('calendar.any_place')),
        places.map((p) => h('option', { value: p.id, selected: p.id === f.place, dataset: { upcoming: p.upcoming == null ? null : String(p.upcoming) } },
          withCount(p.name, p.upcoming))))),
    h('div', { class: 'field' }, h('label', { for: 'cal-category' }, t('calendar.filter_category')),
      h('select', { id: 'cal-category', name: 'category' },
        h('option', { value: '' }, t('calendar.any_category')),
        categories.map((c) => h('option', { value: c.slug, selected: c.slug === f.category, dataset: { upcoming: c.upcoming == null ? null : String(c.upcoming) } },
          withCount(categoryLabel(c.slug), c.upcoming))))),
    h('div', { class: 'field' }, h('label', { for: 'cal-q' }, t('calendar.filter_text')),
      h('input', { id: 'cal-q', name: 'q', type: 'search', value: f.q ?? '' })),
    h('button', { type: 'submit', class: 'button' }, t('calendar.apply_filters')));
}

// keyboardGrid makes the week one tab stop with the arrow keys inside it (a
// roving tabindex). Up and Down move through a day: its heading, then its
// entries in time order; Left and Right go to the day before or after, to
// the entry nearest in time (or the heading, from a heading or to a day with
// nothing on it); Home and End to a day's heading and its last entry. Enter
// is the entry button's own (it opens the entry); Escape closes it. The stop
// is remembered by focus key, so a repaint keeps it.
function keyboardGrid(ctx, week, today) {
  const days = [...week.querySelectorAll('section.cal-day')];
  const stopsOf = (day) => [...day.querySelectorAll('[data-grid-stop]')];
  const all = [...week.querySelectorAll('[data-grid-stop]')];
  if (!all.length) return;
  const start = all.find((el) => el.dataset.focusKey === ctx.state.gridKey)
    ?? week.querySelector(`section.cal-day[data-date="${today}"] [data-grid-stop]`) ?? all[0];
  start.tabIndex = 0;
  const take = (stop) => {
    for (const el of week.querySelectorAll('[data-grid-stop][tabindex="0"]')) if (el !== stop) el.tabIndex = -1;
    stop.tabIndex = 0;
    ctx.state.gridKey = stop.dataset.focusKey;
  };
  // A click or a restored focus moves the tab stop too.
  week.addEventListener('focusin', (ev) => {
    const stop = ev.target.closest?.('[data-grid-stop]');
    if (stop) take(stop);
  });
  const minOf = (el) => Number(el.dataset.gridMin);
  week.addEventListener('keydown', (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    const stop = ev.target.closest?.('[data-grid-stop]');
    if (!stop) return;
    const day = stop.closest('section.cal-day');
    const stops = stopsOf(day);
    const i = stops.indexOf(stop);
    let to;
    switch (ev.key) {
      case 'ArrowDown': to = stops[i + 1]; break;
      case 'ArrowUp': to = stops[i - 1]; break;
      case 'Home': to = stops[0]; break;
      case 'End': to = stops[stops.length - 1]; break;
      case 'ArrowLeft':
      case 'ArrowRight': {
        const other = days[days.indexOf(day) + (ev.key === 'ArrowRight' ? 1 : -1)];
        if (!other) break;
        const there = stopsOf(other);
        if (i === 0 || there.length === 1) { to = there[0]; break; }
        to = there.slice(1).reduce((best, el) => (Math.abs(minOf(el) - minOf(stop)) < Math.abs(minOf(best) - minOf(stop)) ? el : best));
        break;
      }
      case 'Escape':
        if (!ctx.state.selected) return;
        ev.preventDefault();
        ctx.state.selected = null;
        ctx.repaint();
        return;
      default: return;
    }
    ev.preventDefault(); // also at the week's edges: the page does not scroll instead
    if (to) { take(to); to.focus(); }
  });
}

export const calendarPage = {
  name: 'calendar',
  async load(ctx) {
    const slug = ctx.params.city;
    const city = cityOf(slug);
    ctx.useCity(slug);
    const tz = city?.timezone ?? 'UTC';
    ctx.state.filters ??= { place: '', category: '', q: '' };
    ctx.state.mode ??= 'week';
    ctx.state.from ??= weekStart(ctx.params.date && /^\d{4}-\d{2}-\d{2}$/.test(ctx.params.date) ? ctx.params.date : todayIn(tz));
    const query = { ...ctx.state.filters };
    const path = `${CAL}/cities/${enc(slug)}/${ctx.state.mode === 'weekend' ? 'weekend' : 'events'}`;
    if (ctx.state.mode === 'week') { query.from = ctx.state.from; query.to = addDays(ctx.state.from, 6); }
    const [page, places, categories] = await Promise.all([
      fetchRange(path, query, ctx.signal),
      ctx.state.places ?? loadPlaces(slug, ctx.signal),
      ctx.state.categories ?? loadCategories(slug, ctx.signal),
    ]);
    ctx.state.places = places;
    ctx.state.categories = categories;
    return { slug, page };
  },
  render(ctx, { slug, page }) {
    const city = cityOf(slug);
    const tz = page.timezone || city?.timezone || 'UTC';
    const from = page.from;
    const to = page.to;
    const items = page.items ?? [];
    // The choices are the API's; a chosen one with nothing to come stays choosable.
    const categories = [...(ctx.state.categories ?? [])];
    const chosen = ctx.state.filters.category;
    if (chosen && !categories.some((c) => c.slug === chosen)) categories.push({ slug: chosen });
    categories.sort((a, b) => collator().compare(categoryLabel(a.slug), categoryLabel(b.slug)));
    const places = [...(ctx.state.places ?? [])].sort((a, b) => collator().compare(a.name, b.name));
    const days = layout(items, tz, from, to);
    // hours shown: 8–20, widened to the week's entries
    let firstHour = 8;
    let lastHour = 20;
    for (const d of days.values()) {
      for (const x of d.timed) {
        firstHour = Math.min(firstHour, Math.floor(x.startMin / 60));
        lastHour = Math.max(lastHour, Math.ceil(x.endMin / 60));
      }
    }
    ctx.state.firstHour = firstHour;
    const rows = (lastHour - firstHour) * 4;
    const today = todayIn(tz);
    const heading = ctx.state.mode === 'weekend'
      ? t('calendar.weekend_heading', { city: city?.name ?? slug })
      : t('calendar.week_heading', { city: city?.name ?? slug });
    const range = t('calendar.range', { from: formatDate(from, 'long'), to: formatDate(to, 'long') });
    const go = (mode, fromDate) => { ctx.state.mode = mode; ctx.state.from = fromDate; ctx.state.selected = null; ctx.reload({ focusKey: `nav-${mode}` }); };
    const base = ctx.state.mode === 'week' ? from : weekStart(today);

    const week = h('div', { id: 'week', class: 'cal-week', dataset: { days: String(days.size) }, 'aria-label': range, role: 'group' },
      h('div', { class: 'cal-hours', 'aria-hidden': 'true' },
        Array.from({ length: lastHour - firstHour }, (_, i) => h('span', { class: 'cal-hour' }, hhmm((firstHour + i) * 60)))),
      [...days].map(([date, d]) => {
        const n = d.allDay.length + d.timed.length;
        const dayName = formatDate(date, 'full');
        const timed = h('ul', { class: 'cal-timed', 'aria-label': t('calendar.timed_on', { day: dayName }) }, d.timed.map((x) => entryItem(ctx, x, tz)));
        timed.style.gridTemplateColumns = `repeat(${d.lanes}, minmax(0, 1fr))`;
        return h('section', {
          class: `cal-day${date === today ? ' cal-today' : ''}${weekdayOf(date) >= 5 ? ' cal-weekend' : ''}`,
          dataset: { date }, 'aria-labelledby': `day-${date}`,
        },
        h('h2', { id: `day-${date}`, class: 'cal-day-heading', tabindex: '-1', dataset: { focusKey: `day-${date}`, gridStop: '' } },
          h('span', { class: 'cal-day-short', 'aria-hidden': 'true' }, formatDate(date, 'medium')),
          h('span', { class: 'visually-hidden' }, dayName),
          date === today ? h('span', { class: 'cal-tag' }, t('calendar.today')) : null,
          h('span', { class: 'visually-hidden' }, ` — ${tn('calendar.entry_count', n)}`)),
        h('ul', { class: 'cal-allday-list', 'aria-label': t('calendar.all_day_on_day', { day: dayName }) }, d.allDay.map((x) => entryItem(ctx, x, tz))),
        timed,
        n ? null : h('p', { class: 'cal-none muted' }, t('calendar.nothing')));
      }));
    week.style.setProperty('--cal-rows', String(rows));
    week.style.setProperty('--cal-days', String(days.size));
    week.setAttribute('aria-describedby', 'week-keys');
    keyboardGrid(ctx, week, today);

    const feeds = page.feeds ?? {};
    return h('div', { id: 'calendar', dataset: { from, to, timezone: tz, mode: ctx.state.mode, city: slug } },
      h('h1', { tabindex: '-1' }, heading),
      h('p', { class: 'cal-range', 'aria-live': 'polite' }, range, ' ', h('span', { class: 'muted' }, t('calendar.timezone', { tz }))),
      h('div', { class: 'cal-toolbar', role: 'toolbar', 'aria-label': t('calendar.navigation') },
        h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'prev-week', focusKey: 'nav-prev' }, onclick: () => go('week', addDays(base, -7)) }, t('calendar.prev_week')),
        h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'this-week', focusKey: 'nav-this' }, onclick: () => go('week', weekStart(today)) }, t('calendar.this_week')),
        h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'next-week', focusKey: 'nav-next' }, onclick: () => go('week', addDays(base, 7)) }, t('calendar.next_week')),
        h('button', { type: 'button', class: 'button button-quiet', 'aria-pressed': ctx.state.mode === 'weekend' ? 'true' : 'false', dataset: { action: 'weekend', focusKey: 'nav-weekend' }, onclick: () => go('weekend', ctx.state.from) }, t('calendar.weekend'))),
      filtersForm(ctx, places, categories),
      h('p', { class: 'cal-actions' },
        h('a', { href: `#/suggest-event/${enc(slug)}`, dataset: { link: 'suggest' } }, t('calendar.suggest_link')),
        signedIn() && managesCity(slug) ? [' · ', h('a', { href: `#/manage-calendar/${enc(slug)}`, dataset: { link: 'manage' } }, t('calendar.manage_link'))] : null),
      items.length ? null : h('p', { class: 'empty' }, t('calendar.empty')),
      h('p', { id: 'week-keys', class: 'visually-hidden' }, t('calendar.grid_keys')),
      week,
      detail(ctx, slug, tz, items),
      h('section', { id: 'calendar-feeds', 'aria-labelledby': 'calendar-feeds-h' },
        h('h2', { id: 'calendar-feeds-h' }, t('calendar.feeds_heading')),
        h('ul', { class: 'cal-links' },
          feeds.webcal ? h('li', {}, h('a', { href: feeds.webcal, dataset: { link: 'webcal-filtered' } }, t('calendar.subscribe_filtered'))) : null,
          feeds.ics ? h('li', {}, h('a', { href: feeds.ics, dataset: { link: 'ics-filtered' } }, t('calendar.download_filtered'))) : null,
          h('li', {}, h('a', { href: feeds.atom || `${CAL}/cities/${enc(slug)}/feed.atom`, type: 'application/atom+xml', dataset: { link: 'atom' } }, t('calendar.atom_feed'))))),
    );
  },
};
