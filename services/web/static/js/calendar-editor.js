// The calendar's editing pages: a manager's event editor with a recurrence
// editor in plain words, one occurrence cancelled or moved, a series
// cancelled; the moderation queue; and the public "suggest an event" form.
//
// Routes:
//   #/manage-calendar/<city>              new event, and the city's upcoming events
//   #/manage-calendar/<city>/<event id>   edit one event, its occurrences, cancel the series
//   #/manage-calendar/<city>/moderation   submissions waiting for review
//   #/suggest-event/<city>                anyone suggests an event
//   #/suggest-event/<city>/status/<id>/<token>   what became of a suggestion (the token
//                                         stays in the fragment, which is never sent to a server)
//
// Hooks:
//   form[data-form="event"][data-event-id]   fields by name: title, description, place_id, address, category,
//       organiser, image_url, links, accessibility, all_day, start_date, start_time, end_date, end_time, status,
//       freq (none|daily|weekly|monthly|custom), interval, byday (checkboxes MO…SU), monthly (nth|day), nth, weekday,
//       monthday, ends (never|until|count), until, count, raw; button[type=submit]
//   #rrule-summary (aria-live), #rrule-code      the rule in plain words, and as RRULE
//   #upcoming li[data-event-id]                  the city's upcoming events (links to edit)
//   #occurrences li[data-recurrence-id][data-status]  button[data-action="cancel-occurrence"|"restore-occurrence"],
//       form[data-form="move-occurrence"] (start_date, start_time, end_date, end_time)
//   form[data-form="cancel-series"] (reason)
//   #moderation li[data-event-id]  button[data-action="approve"], form[data-form="reject"] (reason)
//   #submission-status a[data-link="status"]     after suggesting; button[data-action="suggest-another"]
//   #submission-state[data-state="pending"|"approved"|"rejected"][data-status]   the status page;
//       a[data-link="event"] once approved, .cal-reason the manager's reason, button[data-action="refresh-status"]

import { h, t, tEnum, state, formatDate, formatDateTime, addDays, notify, errorText, AppError } from './core.js';
import { api, keyFor, settleKey, managesCity } from './api.js';
import { field, formError, busy, showErrors, clearErrors } from './forms.js';
import {
  WEEKDAYS, ORDINALS, defaultRule, parseRRULE, buildRRULE, summary, weekdayName, ordinalLabel, matchesStart, firstMatch,
  localParts,
} from './recurrence.js';
import { CAL, KNOWN_CATEGORIES, cityOf, enc, todayIn, loadPlaces, fetchRange, categoryLabel } from './calendar.js';

const FIELD_MAP = { start: 'start_date', end: 'end_date', rrule: 'rrule', place_id: 'place_id', links: 'links' };

// ---------- the event form ----------

function readRule(form) {
  const v = (n) => form.elements[n]?.value ?? '';
  return {
    freq: v('freq'), interval: Math.max(1, Number(v('interval')) || 1),
    byday: [...form.querySelectorAll('[name="byday"]:checked')].map((c) => c.value),
    monthly: form.querySelector('[name="monthly"]:checked')?.value ?? 'nth',
    nth: Number(v('nth')) || 1, weekday: v('weekday') || 'MO', monthday: Math.min(31, Math.max(1, Number(v('monthday')) || 1)),
    ends: form.querySelector('[name="ends"]:checked')?.value ?? 'never', until: v('until'), count: Math.max(1, Number(v('count')) || 1),
    raw: v('raw'),
  };
}

function parseLinks(text) {
  return String(text ?? '').split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const i = l.lastIndexOf(' ');
    const m = /^(.*?)\s*\|\s*(\S+)$/.exec(l);
    if (m) return { title: m[1] || m[2], url: m[2] };
    return i > 0 ? { title: l.slice(0, i).trim(), url: l.slice(i + 1) } : { title: l, url: l };
  });
}

// bodyOf reads the form into an API body.
function bodyOf(form, tz, { submission = false, editing = false } = {}) {
  const v = (n) => (form.elements[n]?.value ?? '').trim();
  const allDay = form.elements.all_day.checked;
  const startDate = v('start_date');
  const endDate = v('end_date') || startDate;
  const rule = readRule(form);
  const body = {
    title: v('title'), description: v('description'), category: v('category'), organiser: v('organiser'),
    image_url: v('image_url'), links: parseLinks(form.elements.links.value), accessibility: v('accessibility'),
    all_day: allDay,
    start: allDay ? startDate : `${startDate}T${v('start_time')}`,
    end: allDay ? endDate : `${endDate}T${v('end_time')}`,
    rrule: buildRRULE(rule, { allDay, tz }),
  };
  const place = v('place_id');
  if (place) { body.place_id = place; body.address = ''; } else { body.address = v('address'); if (editing) body.place_id = ''; }
  if (!submission) body.status = v('status') || 'confirmed';
  if (submission) { body.submitter_name = v('submitter_name'); body.submitter_email = v('submitter_email'); }
  return body;
}

// updateRule redraws what depends on the rule: which controls show, the
// summary and the RRULE.
function updateRule(form, tz) {
  const rule = readRule(form);
  for (const el of form.querySelectorAll('[data-when-freq]')) el.hidden = !el.dataset.whenFreq.split(' ').includes(rule.freq);
  for (const el of form.querySelectorAll('[data-when-monthly]')) el.hidden = rule.freq !== 'monthly' || el.dataset.whenMonthly !== rule.monthly;
  for (const el of form.querySelectorAll('[data-when-ends]')) el.hidden = rule.freq === 'none' || el.dataset.whenEnds !== rule.ends;
  const allDay = form.elements.all_day.checked;
  for (const el of form.querySelectorAll('[data-timed]')) el.hidden = allDay;
  const start = form.elements.start_date.value;
  form.querySelector('#rrule-summary').textContent = summary(rule);
  // "primo sabato", "prima domenica": the ordinals agree with the weekday.
  for (const o of form.elements.nth?.options ?? []) o.textContent = ordinalLabel(Number(o.value), rule.weekday);
  form.querySelector('#rrule-code').textContent = buildRRULE(rule, { allDay, tz }) || '—';
  const hint = form.querySelector('#rrule-start-hint');
  if (start && !matchesStart(rule, start)) {
    const first = firstMatch(rule, start);
    hint.hidden = false;
    hint.replaceChildren(t('calendar.editor.start_mismatch', { date: formatDate(first, 'full') }), ' ',
      h('button', { type: 'button', class: 'button button-small button-quiet', dataset: { action: 'use-first' }, onclick: () => {
        const len = dayDiff(form.elements.start_date.value, form.elements.end_date.value || form.elements.start_date.value);
        form.elements.start_date.value = first;
        form.elements.end_date.value = addDays(first, len);
        updateRule(form, tz);
      } }, t('calendar.editor.use_first')));
  } else {
    hint.hidden = true;
    hint.replaceChildren();
  }
}

function dayDiff(a, b) {
  return Math.round((new Date(`${b}T12:00:00Z`) - new Date(`${a}T12:00:00Z`)) / 86_400_000);
}

function radio(name, value, label, checked) {
  const id = `r-${name}-${value}`;
  return h('div', { class: 'choice' }, h('input', { type: 'radio', id, name, value, checked }), h('label', { for: id }, label));
}

function recurrenceFieldset(rule) {
  return h('fieldset', { class: 'field field-group cal-rrule', dataset: { field: 'rrule' } },
    h('legend', {}, t('calendar.editor.repeats')),
    field({ name: 'freq', label: t('calendar.editor.frequency'), kind: 'select', value: rule.freq, options: [
      { value: 'none', label: t('calendar.editor.freq_none') },
      { value: 'daily', label: t('calendar.editor.freq_daily') },
      { value: 'weekly', label: t('calendar.editor.freq_weekly') },
      { value: 'monthly', label: t('calendar.editor.freq_monthly') },
      { value: 'custom', label: t('calendar.editor.freq_custom') },
    ] }),
    h('div', { dataset: { whenFreq: 'daily weekly monthly' } },
      field({ name: 'interval', label: t('calendar.editor.interval'), hint: t('calendar.editor.interval_hint'), type: 'number', min: '1', max: '99', value: String(rule.interval) })),
    h('div', { dataset: { whenFreq: 'weekly' } },
      field({ name: 'byday', label: t('calendar.editor.weekdays'), kind: 'checkboxes', value: rule.byday,
        options: WEEKDAYS.map((d) => ({ value: d, label: weekdayName(d) })) })),
    h('fieldset', { class: 'field-group', dataset: { whenFreq: 'monthly' } },
      h('legend', {}, t('calendar.editor.monthly_on')),
      radio('monthly', 'nth', t('calendar.editor.monthly_nth'), rule.monthly === 'nth'),
      h('div', { class: 'cal-inline', dataset: { whenMonthly: 'nth' } },
        field({ name: 'nth', label: t('calendar.editor.which'), kind: 'select', value: String(rule.nth),
          options: ORDINALS.map((n) => ({ value: String(n), label: ordinalLabel(n) })) }),
        field({ name: 'weekday', label: t('calendar.editor.weekday'), kind: 'select', value: rule.weekday,
          options: WEEKDAYS.map((d) => ({ value: d, label: weekdayName(d) })) })),
      radio('monthly', 'day', t('calendar.editor.monthly_day'), rule.monthly === 'day'),
      h('div', { dataset: { whenMonthly: 'day' } },
        field({ name: 'monthday', label: t('calendar.editor.monthday'), type: 'number', min: '1', max: '31', value: String(rule.monthday) }))),
    h('div', { dataset: { whenFreq: 'custom' } },
      field({ name: 'raw', label: t('calendar.editor.raw'), hint: t('calendar.editor.raw_hint'), value: rule.raw })),
    h('fieldset', { class: 'field-group', dataset: { whenFreq: 'daily weekly monthly custom' } },
      h('legend', {}, t('calendar.editor.ends')),
      radio('ends', 'never', t('calendar.editor.ends_never'), rule.ends === 'never'),
      radio('ends', 'until', t('calendar.editor.ends_until'), rule.ends === 'until'),
      h('div', { dataset: { whenEnds: 'until' } }, field({ name: 'until', label: t('calendar.editor.until'), type: 'date', value: rule.until })),
      radio('ends', 'count', t('calendar.editor.ends_count'), rule.ends === 'count'),
      h('div', { dataset: { whenEnds: 'count' } }, field({ name: 'count', label: t('calendar.editor.count'), type: 'number', min: '1', max: '1000', value: String(rule.count) }))),
    h('p', { class: 'cal-summary' }, h('strong', {}, t('calendar.editor.summary'), ' '), h('span', { id: 'rrule-summary', 'aria-live': 'polite' })),
    h('p', { class: 'muted' }, t('calendar.editor.rrule'), ' ', h('code', { id: 'rrule-code' })),
    h('p', { id: 'rrule-start-hint', class: 'warn', hidden: true, 'aria-live': 'polite' }),
    h('p', { class: 'field-error', hidden: true }));
}

// eventForm builds the form for a new or existing event (or a submission).
function eventForm({ ev, places, tz, slug, submission = false, onSubmit }) {
  const today = todayIn(tz);
  const startDate = ev ? ev.start.slice(0, 10) : today;
  const endDate = ev ? ev.end.slice(0, 10) : today;
  const rule = ev ? parseRRULE(ev.rrule, startDate) : defaultRule(startDate);
  const form = h('form', { class: 'stack cal-editor', novalidate: true, dataset: { form: submission ? 'suggest' : 'event', eventId: ev?.id ?? null }, onsubmit: onSubmit },
    formError(),
    field({ name: 'title', label: t('calendar.editor.title'), required: true, value: ev?.title, maxlength: '1000' }),
    field({ name: 'description', label: t('calendar.editor.description'), kind: 'textarea', value: ev?.description, rows: '4' }),
    field({ name: 'place_id', label: t('calendar.editor.place'), kind: 'select', value: ev?.place?.id ?? '', options: [
      { value: '', label: t('calendar.editor.free_address') },
      ...places.map((p) => ({ value: p.id, label: p.name })),
    ] }),
    h('div', { dataset: { whenNoPlace: '' } }, field({ name: 'address', label: t('calendar.editor.address'), value: ev?.address })),
    field({ name: 'category', label: t('calendar.editor.category'), hint: t('calendar.editor.category_hint'), required: true, value: ev?.category, list: 'cal-categories' }),
    h('datalist', { id: 'cal-categories' }, KNOWN_CATEGORIES.filter((c) => c !== 'market').map((c) => h('option', { value: c }, categoryLabel(c)))),
    field({ name: 'organiser', label: t('calendar.editor.organiser'), value: ev?.organiser }),
    field({ name: 'image_url', label: t('calendar.editor.image_url'), type: 'url', value: ev?.image_url }),
    field({ name: 'links', label: t('calendar.editor.links'), hint: t('calendar.editor.links_hint'), kind: 'textarea', rows: '2',
      value: (ev?.links ?? []).map((l) => `${l.title} | ${l.url}`).join('\n') }),
    field({ name: 'accessibility', label: t('calendar.editor.accessibility'), hint: t('calendar.editor.accessibility_hint'), kind: 'textarea', rows: '2', value: ev?.accessibility }),
    h('fieldset', { class: 'field-group' },
      h('legend', {}, t('calendar.editor.when', { tz })),
      h('div', { class: 'choice' }, h('input', { type: 'checkbox', id: 'f-all-day', name: 'all_day', checked: Boolean(ev?.all_day) }),
        h('label', { for: 'f-all-day' }, t('calendar.editor.all_day'))),
      h('div', { class: 'cal-inline' },
        field({ name: 'start_date', label: t('calendar.editor.start_date'), type: 'date', required: true, value: startDate }),
        h('div', { dataset: { timed: '' } }, field({ name: 'start_time', label: t('calendar.editor.start_time'), type: 'time', value: ev && !ev.all_day ? ev.start.slice(11, 16) : '10:00' }))),
      h('div', { class: 'cal-inline' },
        field({ name: 'end_date', label: t('calendar.editor.end_date'), type: 'date', required: true, value: endDate }),
        h('div', { dataset: { timed: '' } }, field({ name: 'end_time', label: t('calendar.editor.end_time'), type: 'time', value: ev && !ev.all_day ? ev.end.slice(11, 16) : '12:00' })))),
    recurrenceFieldset(rule),
    submission ? [
      field({ name: 'submitter_name', label: t('calendar.suggest.name'), hint: t('calendar.suggest.private_hint') }),
      field({ name: 'submitter_email', label: t('calendar.suggest.email'), type: 'email' }),
    ] : field({ name: 'status', label: t('calendar.editor.status'), kind: 'select', value: ev?.status === 'tentative' ? 'tentative' : 'confirmed', options: [
      { value: 'confirmed', label: t('calendar.status.confirmed') },
      { value: 'tentative', label: t('calendar.status.tentative') },
    ] }),
    h('button', { type: 'submit', class: 'button' }, submission ? t('calendar.suggest.submit') : ev ? t('calendar.editor.save') : t('calendar.editor.create')));
  const sync = () => {
    updateRule(form, tz);
    const noPlace = !form.elements.place_id.value;
    for (const el of form.querySelectorAll('[data-when-no-place]')) el.hidden = !noPlace;
  };
  form.addEventListener('input', sync);
  form.addEventListener('change', sync);
  queueMicrotask(sync);
  requestAnimationFrame(sync); // after a repaint restored typed values
  return form;
}

async function save(form, scope, method, path, body, ok) {
  clearErrors(form);
  busy(form, true);
  const key = method === 'POST' ? keyFor(scope, body) : undefined;
  try {
    const out = await api(method, path, { body, key });
    if (key) settleKey(scope);
    return ok(out);
  } catch (err) {
    if (key) settleKey(scope, err);
    showErrors(form, err, FIELD_MAP);
    return null;
  } finally {
    busy(form, false);
  }
}

// ---------- the manager's editor ----------

export const editorPage = {
  name: 'calendar-editor',
  access: 'manager',
  async load(ctx) {
    const slug = ctx.params.city;
    ctx.useCity(slug);
    const tz = cityOf(slug)?.timezone ?? 'UTC';
    const id = ctx.params.id;
    const from = todayIn(tz);
    const [places, ev, range] = await Promise.all([
      loadPlaces(slug, ctx.signal),
      id ? api('GET', `${CAL}/events/${enc(id)}`, { signal: ctx.signal }) : null,
      fetchRange(`${CAL}/cities/${enc(slug)}/events`, { from, to: addDays(from, 91) }, ctx.signal).catch((err) => {
        if (err?.name === 'AbortError') throw err;
        return { items: [] };
      }),
    ]);
    return { slug, tz: ev?.timezone ?? range.timezone ?? tz, places, ev, items: range.items ?? [] };
  },
  render(ctx, { slug, tz, places, ev, items }) {
    const city = cityOf(slug);
    const submit = (e) => {
      e.preventDefault();
      const form = e.currentTarget;
      const body = bodyOf(form, tz, { editing: Boolean(ev) });
      if (ev) body.version = ev.version;
      const path = ev ? `${CAL}/events/${enc(ev.id)}` : `${CAL}/cities/${enc(slug)}/events`;
      save(form, `calendar-event:${ev?.id ?? slug}`, ev ? 'PATCH' : 'POST', path, body, (out) => {
        const msg = ev ? t('calendar.editor.saved', { title: out.title }) : t('calendar.editor.created', { title: out.title });
        // The router clears the notice on a new route: announce after it.
        window.addEventListener('hashchange', () => notify(msg), { once: true });
        location.hash = `#/calendar/${enc(slug)}/${out.start.slice(0, 10)}`;
      });
    };
    const series = new Map();
    for (const x of items) if (x.kind === 'event' && x.event_id && !series.has(x.event_id)) series.set(x.event_id, x);
    return [
      h('h1', { tabindex: '-1' }, ev ? t('calendar.editor.edit_heading', { title: ev.title }) : t('calendar.editor.new_heading', { city: city?.name ?? slug })),
      managesCity(slug) ? null : h('p', { class: 'warn' }, t('manage.not_yours')),
      h('p', {}, h('a', { href: `#/calendar/${enc(slug)}` }, t('calendar.editor.back')), ' · ',
        h('a', { href: `#/manage-calendar/${enc(slug)}/moderation`, dataset: { link: 'moderation' } }, t('calendar.moderation.link')),
        ev ? [' · ', h('a', { href: `#/manage-calendar/${enc(slug)}` }, t('calendar.editor.new_link'))] : null),
      ev?.status === 'cancelled' ? h('p', { class: 'warn' }, t('calendar.editor.series_cancelled', { reason: ev.reason || '' })) : null,
      eventForm({ ev, places, tz, slug, onSubmit: submit }),
      ev ? occurrencesSection(ctx, ev, items.filter((x) => x.event_id === ev.id), tz) : null,
      ev && ev.status !== 'cancelled' ? cancelSeries(ctx, ev) : null,
      ev ? null : h('section', { 'aria-labelledby': 'upcoming-h' },
        h('h2', { id: 'upcoming-h' }, t('calendar.editor.upcoming')),
        series.size ? h('ul', { id: 'upcoming', class: 'cards' }, [...series.values()].map((x) => h('li', { class: 'card', dataset: { eventId: x.event_id } },
          h('a', { href: `#/manage-calendar/${enc(slug)}/${enc(x.event_id)}` }, x.title), ' ',
          h('span', { class: 'muted' }, formatWhen(x, tz)))))
          : h('p', { class: 'empty' }, t('calendar.editor.no_upcoming'))),
    ];
  },
};

function formatWhen(x, tz) {
  if (x.all_day) return formatDate(x.start.slice(0, 10), 'medium');
  return new Intl.DateTimeFormat(state.locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: tz }).format(new Date(x.starts_at));
}

function occurrencesSection(ctx, ev, occ, tz) {
  if (!ev.rrule && !(ev.rdates ?? []).length) return null;
  const over = new Map((ev.overrides ?? []).map((o) => [o.recurrence_id, o]));
  const act = async (button, method, rid, body, msg) => {
    button.disabled = true;
    try {
      await api(method, `${CAL}/events/${enc(ev.id)}/occurrences/${enc(rid)}`, { body });
      notify(msg);
      ctx.reload();
    } catch (err) {
      notify(errorText(err), 'error');
      button.disabled = false;
    }
  };
  return h('section', { 'aria-labelledby': 'occ-h' },
    h('h2', { id: 'occ-h' }, t('calendar.editor.occurrences')),
    occ.length ? h('ul', { id: 'occurrences', class: 'cards' }, occ.map((x) => {
      const rid = x.recurrence_id ?? x.start;
      const changed = over.has(rid) || x.overridden;
      const s = localParts(x.starts_at, tz);
      const e = localParts(x.ends_at, tz);
      const move = (evt) => {
        evt.preventDefault();
        const f = evt.currentTarget;
        const v = (n) => f.elements[n].value;
        const body = x.all_day ? { start: v('start_date'), end: v('end_date') || v('start_date') }
          : { start: `${v('start_date')}T${v('start_time')}`, end: `${v('end_date') || v('start_date')}T${v('end_time')}` };
        clearErrors(f);
        busy(f, true);
        api('PUT', `${CAL}/events/${enc(ev.id)}/occurrences/${enc(rid)}`, { body: { ...body, status: 'confirmed' } })
          .then(() => { notify(t('calendar.editor.moved')); ctx.reload(); })
          .catch((err) => showErrors(f, err, FIELD_MAP))
          .finally(() => busy(f, false));
      };
      return h('li', { class: `card cal-status-${x.status}`, dataset: { recurrenceId: rid, status: x.status } },
        h('p', {}, h('strong', {}, formatWhen(x, tz)), ' ', x.status === 'cancelled' ? h('span', { class: 'badge badge-cancelled' }, t('calendar.status.cancelled')) : null,
          changed ? h('span', { class: 'muted' }, ` ${t('calendar.editor.changed')}`) : null),
        h('div', { class: 'actions' },
          x.status !== 'cancelled' ? h('button', { type: 'button', class: 'button button-quiet button-small', dataset: { action: 'cancel-occurrence' },
            onclick: (e2) => act(e2.currentTarget, 'PUT', rid, { status: 'cancelled' }, t('calendar.editor.occurrence_cancelled')) }, t('calendar.editor.cancel_one')) : null,
          changed ? h('button', { type: 'button', class: 'button button-quiet button-small', dataset: { action: 'restore-occurrence' },
            onclick: (e2) => act(e2.currentTarget, 'DELETE', rid, undefined, t('calendar.editor.occurrence_restored')) }, t('calendar.editor.restore_one')) : null),
        h('details', {}, h('summary', {}, t('calendar.editor.move_one')),
          h('form', { class: 'stack', dataset: { form: 'move-occurrence' }, onsubmit: move },
            formError(),
            h('div', { class: 'cal-inline' },
              field({ name: 'start_date', label: t('calendar.editor.start_date'), type: 'date', value: x.all_day ? x.start.slice(0, 10) : s.date }),
              x.all_day ? null : field({ name: 'start_time', label: t('calendar.editor.start_time'), type: 'time', value: x.start.slice(11, 16) || '' })),
            h('div', { class: 'cal-inline' },
              field({ name: 'end_date', label: t('calendar.editor.end_date'), type: 'date', value: x.all_day ? x.end.slice(0, 10) : e.date }),
              x.all_day ? null : field({ name: 'end_time', label: t('calendar.editor.end_time'), type: 'time', value: x.end.slice(11, 16) || '' })),
            h('button', { type: 'submit', class: 'button button-small' }, t('calendar.editor.move_submit')))));
    })) : h('p', { class: 'empty' }, t('calendar.editor.no_occurrences')));
}

function cancelSeries(ctx, ev) {
  const submit = (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    save(form, `cancel-series:${ev.id}`, 'PATCH', `${CAL}/events/${enc(ev.id)}`,
      { status: 'cancelled', reason: form.elements.reason.value.trim(), version: ev.version }, () => {
        notify(t('calendar.editor.series_cancelled_ok'));
        ctx.reload();
      });
  };
  return h('section', { 'aria-labelledby': 'cancel-h' },
    h('h2', { id: 'cancel-h' }, t('calendar.editor.cancel_series')),
    h('form', { class: 'stack', dataset: { form: 'cancel-series' }, onsubmit: submit },
      formError(),
      field({ name: 'reason', label: t('calendar.editor.cancel_reason'), kind: 'textarea', rows: '2' }),
      h('button', { type: 'submit', class: 'button button-danger' }, t('calendar.editor.cancel_series_submit'))));
}

// ---------- moderation ----------

export const moderationPage = {
  name: 'calendar-moderation',
  access: 'manager',
  async load(ctx) {
    const slug = ctx.params.city;
    ctx.useCity(slug);
    const body = await api('GET', `${CAL}/cities/${enc(slug)}/moderation`, { signal: ctx.signal, query: { limit: 100 } });
    return { slug, items: body.items ?? [] };
  },
  render(ctx, { slug, items }) {
    const city = cityOf(slug);
    const review = async (form, button, ev, action, body) => {
      if (form) { clearErrors(form); busy(form, true); }
      if (button) button.disabled = true;
      const scope = `review:${ev.id}:${action}`;
      const full = { ...body, version: ev.version };
      try {
        await api('POST', `${CAL}/events/${enc(ev.id)}/${action}`, { body: full, key: keyFor(scope, full) });
        settleKey(scope);
        notify(action === 'approve' ? t('calendar.moderation.approved', { title: ev.title }) : t('calendar.moderation.rejected', { title: ev.title }));
        ctx.reload();
      } catch (err) {
        settleKey(scope, err);
        if (form) showErrors(form, err); else notify(errorText(err), 'error');
      } finally {
        if (form) busy(form, false);
        if (button) button.disabled = false;
      }
    };
    return [
      h('h1', { tabindex: '-1' }, t('calendar.moderation.heading', { city: city?.name ?? slug })),
      h('p', {}, h('a', { href: `#/manage-calendar/${enc(slug)}` }, t('calendar.moderation.back'))),
      items.length ? h('ul', { id: 'moderation', class: 'cards' }, items.map((ev) => h('li', { class: 'card', dataset: { eventId: ev.id } },
        h('h2', { class: 'card-title' }, ev.title),
        h('p', {}, formatEventWhen(ev), ev.rrule ? ` — ${summary(parseRRULE(ev.rrule, ev.start.slice(0, 10)))}` : ''),
        h('p', {}, categoryLabel(ev.category), ev.place?.name || ev.address ? ` · ${ev.place?.name || ev.address}` : ''),
        ev.organiser ? h('p', {}, t('calendar.organiser_is', { organiser: ev.organiser })) : null,
        ev.description ? h('p', { class: 'cal-description' }, ev.description) : null,
        ev.submitter ? h('p', { class: 'muted' }, t('calendar.moderation.submitter', { name: ev.submitter.name || '—', email: ev.submitter.email || '—' })) : null,
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'button', dataset: { action: 'approve' }, onclick: (e) => review(null, e.currentTarget, ev, 'approve', {}) }, t('calendar.moderation.approve'))),
        h('form', { class: 'stack', dataset: { form: 'reject' }, onsubmit: (e) => {
          e.preventDefault();
          const f = e.currentTarget;
          const reason = f.elements.reason.value.trim();
          if (!reason) {
            showErrors(f, new AppError({ errors: [{ field: 'reason', message: t('calendar.moderation.reason_needed') }] }));
            return;
          }
          review(f, null, ev, 'reject', { reason });
        } },
        formError(),
        field({ name: 'reason', label: t('calendar.moderation.reason'), hint: t('calendar.moderation.reason_hint'), kind: 'textarea', rows: '2', required: true }),
        h('button', { type: 'submit', class: 'button button-quiet' }, t('calendar.moderation.reject'))))))
        : h('p', { class: 'empty' }, t('calendar.moderation.empty')),
    ];
  },
};

function formatEventWhen(ev) {
  if (ev.all_day) return formatDate(ev.start.slice(0, 10), 'medium');
  return new Intl.DateTimeFormat(state.locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: ev.timezone || 'UTC' }).format(new Date(ev.starts_at));
}

// ---------- suggest an event (anyone) ----------

// statusLink is the web page that follows a submission.
function statusLink(slug, id, token) {
  return `#/suggest-event/${enc(slug)}/status/${enc(id)}/${enc(token)}`;
}

// statusOfHash reads #/suggest-event/<city>/status/<id>/<token>. The shell's
// router names the page by its first two parts; the rest is this page's.
function statusOfHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  if (parts[0] !== 'suggest-event' || parts[2] !== 'status' || !parts[3] || !parts[4] || parts.length > 5) return null;
  return { id: parts[3], token: parts[4] };
}

function renderStatus(ctx, slug, st) {
  const city = cityOf(slug);
  const back = h('p', {}, h('a', { href: `#/calendar/${enc(slug)}` }, t('calendar.editor.back')));
  if (!st) {
    return [h('h1', { tabindex: '-1' }, t('calendar.submission.heading')),
      h('p', { id: 'submission-state', class: 'alert', dataset: { state: 'unknown' } }, t('calendar.submission.not_found')), back];
  }
  const cancelled = st.state === 'approved' && st.status === 'cancelled';
  const when = (st.start ?? '').length > 10 ? formatDateTime(st.starts_at, st.timezone) : formatDate((st.start ?? '').slice(0, 10), 'medium');
  let says;
  if (st.state === 'pending') says = t('calendar.submission.pending');
  else if (st.state === 'rejected') says = t('calendar.submission.rejected');
  else if (cancelled) says = t('calendar.submission.cancelled');
  else says = t('calendar.submission.approved');
  return [
    h('h1', { tabindex: '-1' }, t('calendar.submission.heading')),
    h('section', { id: 'submission-state', class: `card cal-submission cal-submission-${st.state}`, 'aria-labelledby': 'submission-title',
      dataset: { state: st.state, status: st.status } },
    h('h2', { id: 'submission-title', class: 'card-title' }, st.title),
    h('p', { class: 'muted' }, t('calendar.submission.when', { city: city?.name ?? st.city, date: when })),
    h('p', { class: 'cal-submission-state' }, h('strong', {}, tEnum('calendar.submission.state', st.state)), ' — ', says),
    st.reason ? h('p', { class: 'cal-reason' }, t('calendar.submission.reason', { reason: st.reason })) : null,
    st.state === 'approved' && !cancelled ? h('p', {}, h('a', { href: `#/calendar/${enc(st.city || slug)}/${enc((st.start ?? '').slice(0, 10))}`, dataset: { link: 'event' } },
      t('calendar.submission.see_event'))) : null,
    h('p', { class: 'muted' }, t('calendar.submission.checked', { time: formatDateTime(new Date().toISOString()) }))),
    h('p', {},
      h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'refresh-status' }, onclick: () => ctx.reload({ focusKey: 'refresh-status' }) },
        t('calendar.submission.refresh')), ' ',
      h('a', { href: `#/suggest-event/${enc(slug)}` }, t('calendar.suggest.another'))),
    back,
  ];
}

export const suggestPage = {
  name: 'suggest-event',
  async load(ctx) {
    const slug = ctx.params.city;
    ctx.useCity(slug);
    const want = statusOfHash();
    if (want) {
      try {
        const st = await api('GET', `${CAL}/submissions/${enc(want.id)}`, { auth: false, signal: ctx.signal, query: { token: want.token } });
        return { slug, status: st };
      } catch (err) {
        if (err?.status === 404) return { slug, status: null };
        throw err;
      }
    }
    return { slug, places: await loadPlaces(slug, ctx.signal) };
  },
  render(ctx, data) {
    const { slug, places } = data;
    if ('status' in data) return renderStatus(ctx, slug, data.status);
    const city = cityOf(slug);
    const tz = city?.timezone ?? 'UTC';
    const done = ctx.state.submitted;
    if (done) {
      // The page to keep, not the API's URL: it shows the state in words.
      const url = new URL(statusLink(slug, done.event?.id ?? '', done.status_token ?? ''), location.href).href;
      return [
        h('h1', { tabindex: '-1' }, t('calendar.suggest.thanks_heading')),
        h('div', { id: 'submission-status', class: 'card' },
          h('p', {}, t('calendar.suggest.thanks', { title: done.event?.title ?? '' })),
          h('p', {}, t('calendar.suggest.keep_link')),
          h('p', { class: 'cal-status-link' }, h('a', { href: url, dataset: { link: 'status' } }, url)),
          navigator.clipboard ? h('p', {}, h('button', { type: 'button', class: 'button button-small button-quiet', dataset: { action: 'copy-status' }, onclick: () => {
            navigator.clipboard.writeText(url).then(() => notify(t('calendar.suggest.copied')), () => notify(t('calendar.suggest.copy_failed'), 'error'));
          } }, t('calendar.suggest.copy_link'))) : null,
          h('p', {}, tEnum('calendar.status', done.event?.status ?? 'pending_review'))),
        h('p', {},
          h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'suggest-another' }, onclick: () => {
            ctx.state.submitted = null;
            ctx.repaint({ focusHeading: true });
          } }, t('calendar.suggest.another')), ' ',
          h('a', { href: `#/calendar/${enc(slug)}` }, t('calendar.editor.back'))),
      ];
    }
    const submit = (e) => {
      e.preventDefault();
      const form = e.currentTarget;
      save(form, `suggest:${slug}`, 'POST', `${CAL}/cities/${enc(slug)}/submissions`, bodyOf(form, tz, { submission: true }), (out) => {
        ctx.state.submitted = out;
        ctx.repaint({ focusHeading: true });
      });
    };
    return [
      h('h1', { tabindex: '-1' }, t('calendar.suggest.heading', { city: city?.name ?? slug })),
      h('p', {}, t('calendar.suggest.intro')),
      eventForm({ places, tz, slug, submission: true, onSubmit: submit }),
    ];
  },
};
