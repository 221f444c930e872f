// Vendor pages: the profile, the markets of a city and applying for their
// dates, each application's state, and the stall on the day (check in, post
// a status, check out) — phone first.
//
// Hooks:
//   form[data-form="profile"]                 the profile form (fields by name)
//   #vendor-profile[data-vendor-id]           the profile card on #/vendor
//   #applications li[data-application-id]     one per application (data-status,
//                                             data-date, data-market-id, data-pitch)
//   .live-panel[data-application-id]          today's stall (data-live-state,
//                                             data-day-status); buttons
//                                             [data-action="check-in"|"check-out"],
//                                             form[data-form="status"] (input name="text")
//   #markets-list li[data-market-id]          markets of the city (a[data-action="apply"])
//   form[data-form="apply"]                   radio name="mode" (dates | season),
//                                             checkboxes name="date" (value YYYY-MM-DD),
//                                             select name="pitch", textarea name="note"
//   #apply-result li[data-date][data-status]  what an application request did

import {
  h, t, tn, tEnum, state, formatDate, formatTime, formatDateTime, addDays, collator, notify, storageGet, storageSet,
  AppError, errorText,
} from './core.js';
import { api, allPages, keyFor, settleKey, session } from './api.js';
import { field, formError, busy, showErrors, clearErrors, values, splitList } from './forms.js';

const STORE_VENDOR = 'piazza.vendor';
const KINDS = ['farmer', 'artisan', 'food', 'other'];

// ---------- shared ----------

async function myVendors(signal) {
  return allPages('vendors/mine', {}, { max: 3, signal });
}

function chosenVendor(vendors, city) {
  const stored = storageGet(STORE_VENDOR);
  return vendors.find((v) => v.id === stored && (!city || v.city === city))
    ?? vendors.find((v) => !city || v.city === city)
    ?? null;
}

function cityName(slug) {
  return state.cities.find((c) => c.slug === slug)?.name ?? slug;
}

function cityTz(slug) {
  return state.cities.find((c) => c.slug === slug)?.timezone;
}

function weekdayName(n) {
  // 2024-01-01 was a Monday (ISO weekday 1).
  return new Intl.DateTimeFormat(state.locale, { weekday: 'long', timeZone: 'UTC' })
    .format(new Date(Date.UTC(2024, 0, n)));
}

// run performs one user action: a POST with its own idempotency key (reused
// if the same action is retried after an unknown outcome), a notice on
// success, the error next to the control (or in the notice) on failure.
async function run(scope, method, path, body, { ok, form, fieldMap, button } = {}) {
  const key = method === 'POST' ? keyFor(scope, body) : undefined;
  if (button) button.disabled = true;
  if (form) { clearErrors(form); busy(form, true); }
  try {
    const out = await api(method, path, { body, key });
    settleKey(scope);
    if (ok) notify(ok(out));
    return out;
  } catch (err) {
    settleKey(scope, err);
    if (form) showErrors(form, err, fieldMap);
    else notify(errorText(err), 'error');
    return null;
  } finally {
    if (button) button.disabled = false;
    if (form) busy(form, false);
  }
}

function marketDayLine(day, tz) {
  if (!day) return '';
  return t('vendor.day_line', {
    date: formatDate(day.date, 'medium'),
    market: day.market?.name ?? '',
    start: formatTime(day.starts_at, tz),
    end: formatTime(day.ends_at, tz),
  });
}

// ---------- profile ----------

function profileForm(ctx, vendor) {
  const creating = !vendor;
  const kinds = KINDS.map((k) => ({ value: k, label: tEnum('vendor.kind', k) }));
  const cities = [...state.cities].sort((a, b) => collator().compare(a.name, b.name)).map((c) => ({ value: c.slug, label: c.name }));
  const form = h('form', { class: 'form card', dataset: { form: 'profile' }, novalidate: true, onsubmit: submit },
    formError(),
    creating ? field({ name: 'city', label: t('profile.city'), kind: 'select', options: cities, value: state.city?.slug, required: true }) : null,
    field({ name: 'name', label: t('profile.name'), value: vendor?.name, required: true, maxlength: 120, autocomplete: 'organization' }),
    field({ name: 'kind', label: t('profile.kind'), kind: 'select', options: kinds, value: vendor?.kind ?? 'farmer', required: true }),
    field({ name: 'categories', label: t('profile.categories'), hint: t('profile.categories_hint'), value: (vendor?.categories ?? []).join(', ') }),
    field({ name: 'description', label: t('profile.description'), kind: 'textarea', rows: 4, maxlength: 2000, value: vendor?.description }),
    field({ name: 'languages', label: t('profile.languages'), hint: t('profile.languages_hint'), value: (vendor?.languages ?? []).join(', '), autocapitalize: 'none' }),
    field({ name: 'photo_url', label: t('profile.photo_url'), hint: t('profile.photo_url_hint'), type: 'url', value: vendor?.photo_url, inputmode: 'url' }),
    h('fieldset', { class: 'field-group' },
      h('legend', {}, t('profile.contact')),
      h('p', { class: 'hint' }, t('profile.contact_hint')),
      field({ name: 'contact_email', label: t('profile.contact_email'), type: 'email', value: vendor?.contact?.email, autocomplete: 'email' }),
      field({ name: 'contact_phone', label: t('profile.contact_phone'), hint: t('profile.contact_phone_hint'), type: 'tel', value: vendor?.contact?.phone, autocomplete: 'tel' }),
      field({ name: 'contact_website', label: t('profile.contact_website'), type: 'url', value: vendor?.contact?.website, inputmode: 'url' }),
    ),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'button' }, creating ? t('profile.create') : t('profile.save')),
      creating ? null : h('a', { class: 'button button-quiet', href: '#/vendor' }, t('action.cancel'))),
  );

  async function submit(ev) {
    ev.preventDefault();
    const f = form.elements;
    const contact = {};
    for (const k of ['email', 'phone', 'website']) {
      const v = f[`contact_${k}`].value.trim();
      if (v) contact[k] = v;
    }
    const body = {
      name: f.name.value.trim(),
      kind: f.kind.value,
      categories: splitList(f.categories.value).map((c) => c.toLowerCase()),
      description: f.description.value.trim(),
      languages: splitList(f.languages.value).map((l) => l.toLowerCase()),
      photo_url: f.photo_url.value.trim(),
      contact,
    };
    let out;
    if (creating) {
      body.city = f.city.value;
      if (!body.photo_url) delete body.photo_url;
      if (!Object.keys(contact).length) delete body.contact;
      out = await run('profile:create', 'POST', 'vendors', body, { form, ok: () => t('profile.created') });
    } else {
      body.version = vendor.version;
      out = await run(`profile:${vendor.id}`, 'PATCH', `vendors/${vendor.id}`, body, { form, ok: () => t('profile.saved') });
    }
    if (out) {
      storageSet(STORE_VENDOR, out.id);
      ctx.go('#/vendor');
    }
  }
  return form;
}

export const profilePage = {
  name: 'vendor-profile',
  access: 'signedin',
  async load(ctx) {
    const vendors = await myVendors(ctx.signal);
    return { vendor: chosenVendor(vendors) };
  },
  render(ctx, { vendor }) {
    return [
      h('h1', { tabindex: '-1' }, vendor ? t('profile.edit_heading') : t('profile.create_heading')),
      profileForm(ctx, vendor),
    ];
  },
};

// ---------- dashboard ----------

function applicationState(app, tz) {
  switch (app.status) {
    case 'accepted': return t('application.state_accepted', { pitch: app.pitch ?? '' });
    case 'waitlisted': return app.waitlist_position
      ? t('application.state_waitlisted_at', { position: app.waitlist_position })
      : tEnum('application.status', app.status);
    case 'offered': return t('application.state_offered', {
      pitch: app.pitch ?? '', until: app.offer_expires_at ? formatDateTime(app.offer_expires_at, tz) : '',
    });
    case 'rejected': return app.reason
      ? t('application.state_rejected', { reason: app.reason })
      : tEnum('application.status', app.status);
    default: return tEnum('application.status', app.status);
  }
}

function confirmButton(label, confirmLabel, onConfirm, props = {}) {
  // Two steps instead of a modal dialog: the first press shows the question.
  const wrap = h('span', { class: 'confirm' });
  const first = h('button', { type: 'button', class: 'button button-quiet', ...props, onclick: () => {
    const yes = h('button', { type: 'button', class: 'button button-danger', dataset: { action: `${props['data-action'] ?? 'confirm'}-confirm` }, onclick: () => onConfirm(yes) }, confirmLabel);
    const no = h('button', { type: 'button', class: 'button button-quiet', onclick: () => { wrap.replaceChildren(first); first.focus(); } }, t('action.keep'));
    wrap.replaceChildren(yes, no);
    yes.focus();
  } }, label);
  wrap.append(first);
  return wrap;
}

function applicationItem(ctx, app, tz) {
  const day = app.market_day ?? {};
  const actions = [];
  if (app.status === 'offered') {
    actions.push(h('button', { type: 'button', class: 'button', dataset: { action: 'offer-accept' }, onclick: async (ev) => {
      if (await run(`offer-accept:${app.id}`, 'POST', `applications/${app.id}/offer/accept`, undefined, { button: ev.currentTarget, ok: () => t('application.offer_taken', { pitch: app.pitch ?? '' }) })) ctx.reload();
    } }, t('application.take_offer')));
    actions.push(h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'offer-decline' }, onclick: async (ev) => {
      if (await run(`offer-decline:${app.id}`, 'POST', `applications/${app.id}/offer/decline`, undefined, { button: ev.currentTarget, ok: () => t('application.offer_declined') })) ctx.reload();
    } }, t('application.decline_offer')));
  }
  if (['pending', 'waitlisted', 'accepted'].includes(app.status) && !['closed', 'cancelled'].includes(day.status)) {
    actions.push(confirmButton(t('application.withdraw'), t('application.withdraw_confirm'), async (btn) => {
      if (await run(`withdraw:${app.id}`, 'POST', `applications/${app.id}/withdraw`, {}, { button: btn, ok: () => t('application.withdrawn') })) ctx.reload();
    }, { 'data-action': 'withdraw' }));
  }
  return h('li', {
    class: `application app-${app.status}`,
    dataset: { applicationId: app.id, status: app.status, date: day.date, marketId: day.market?.id, pitch: app.pitch },
  },
  h('p', { class: 'application-day' }, marketDayLine(day, tz)),
  h('p', { class: 'application-place muted' }, day.place?.name ?? ''),
  h('p', { class: `application-state badge badge-app-${app.status}` }, applicationState(app, tz)),
  day.status === 'cancelled'
    ? h('p', { class: 'warn' }, day.cancel_reason ? t('application.day_cancelled_reason', { reason: day.cancel_reason }) : t('application.day_cancelled'))
    : null,
  actions.length ? h('div', { class: 'actions' }, actions) : null);
}

function livePanel(ctx, app, tz) {
  const day = app.market_day ?? {};
  const live = app.live_state ?? 'expected';
  const dayOpen = day.status === 'open';
  const headingId = `live-${app.id}`;
  const counterId = `live-count-${app.id}`;
  const input = h('input', {
    type: 'text', name: 'text', maxlength: 140, required: true, autocomplete: 'off', enterkeyhint: 'send',
    id: `live-text-${app.id}`, 'aria-describedby': `${counterId} live-text-${app.id}-error`,
    oninput: () => { counter.textContent = tn('live.chars_left', 140 - [...input.value].length); },
  });
  const counter = h('p', { id: counterId, class: 'hint', 'aria-live': 'off' }, tn('live.chars_left', 140));
  const statusForm = h('form', { class: 'status-form', dataset: { form: 'status' }, novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) { showErrors(statusForm, new AppError({ errors: [{ field: 'text', message: t('live.status_empty') }] })); return; }
    if (await run(`status:${app.id}`, 'POST', `applications/${app.id}/status-posts`, { text }, { form: statusForm, ok: () => t('live.status_posted') })) {
      input.value = '';
      ctx.reload();
    }
  } },
  formError(),
  h('div', { class: 'field', dataset: { field: 'text' } },
    h('label', { for: input.id }, t('live.status_label')),
    input,
    counter,
    h('p', { id: `live-text-${app.id}-error`, class: 'field-error', hidden: true })),
  h('button', { type: 'submit', class: 'button' }, t('live.post')));

  return h('section', {
    class: `live-panel live-${live}`, 'aria-labelledby': headingId,
    dataset: { applicationId: app.id, liveState: live, dayStatus: day.status },
  },
  h('h3', { id: headingId }, t('live.heading', { market: day.market?.name ?? '', pitch: app.pitch ?? '' })),
  h('p', { class: 'live-state' }, h('span', { class: `badge badge-live-${live}` }, tEnum('stall.live', live)),
    ' ', tEnum('market_day.status', day.status)),
  app.status_text && live !== 'closed' ? h('p', { class: 'live-current' }, t('live.current', { text: app.status_text })) : null,
  live === 'expected'
    ? h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'button button-big', dataset: { action: 'check-in' }, disabled: !dayOpen, 'aria-describedby': dayOpen ? null : `${headingId}-why`, onclick: async (ev) => {
        if (await run(`check-in:${app.id}`, 'POST', `applications/${app.id}/check-in`, undefined, { button: ev.currentTarget, ok: () => t('live.checked_in') })) ctx.reload();
      } }, t('live.check_in')),
      dayOpen ? null : h('p', { id: `${headingId}-why`, class: 'hint' }, t('live.not_open_yet')))
    : null,
  live !== 'closed' && ['open', 'scheduled'].includes(day.status) ? statusForm : null,
  live === 'open'
    ? h('div', { class: 'actions' }, confirmButton(t('live.check_out'), t('live.check_out_confirm'), async (btn) => {
      if (await run(`check-out:${app.id}`, 'POST', `applications/${app.id}/check-out`, undefined, { button: btn, ok: () => t('live.checked_out') })) ctx.reload();
    }, { 'data-action': 'check-out' }))
    : null);
}

export const dashboardPage = {
  name: 'vendor',
  access: 'signedin',
  async load(ctx) {
    const vendors = await myVendors(ctx.signal);
    const vendor = chosenVendor(vendors);
    if (!vendor) return { vendors, vendor: null };
    const today = await api('GET', `cities/${encodeURIComponent(vendor.city)}/today`, { auth: false, signal: ctx.signal });
    const apps = await allPages(`vendors/${vendor.id}/applications`, { from: today?.date }, { max: 3, signal: ctx.signal });
    return { vendors, vendor, today: today?.date, apps };
  },
  render(ctx, { vendors, vendor, today, apps }) {
    if (!vendor) {
      return [
        h('h1', { tabindex: '-1' }, t('vendor.welcome', { name: session.account?.name ?? '' })),
        h('p', {}, t('vendor.no_profile')),
        h('h2', {}, t('profile.create_heading')),
        profileForm(ctx, null),
      ];
    }
    const tz = cityTz(vendor.city);
    const todays = apps.filter((a) => a.status === 'accepted' && a.market_day?.date === today);
    const picker = vendors.length > 1
      ? h('div', { class: 'field' },
        h('label', { for: 'vendor-pick' }, t('vendor.choose_profile')),
        h('select', { id: 'vendor-pick', onchange: (ev) => { storageSet(STORE_VENDOR, ev.target.value); ctx.reload(); } },
          vendors.map((v) => h('option', { value: v.id, selected: v.id === vendor.id }, `${v.name} (${cityName(v.city)})`))))
      : null;
    return [
      h('h1', { tabindex: '-1' }, t('vendor.heading', { name: vendor.name })),
      picker,
      h('section', { id: 'vendor-profile', class: 'card', 'aria-labelledby': 'vp-h', dataset: { vendorId: vendor.id, city: vendor.city } },
        h('h2', { id: 'vp-h' }, t('vendor.profile')),
        h('p', {}, h('strong', {}, vendor.name), ' · ', tEnum('vendor.kind', vendor.kind), ' · ', cityName(vendor.city)),
        vendor.categories?.length ? h('p', { class: 'muted' }, vendor.categories.join(', ')) : null,
        h('div', { class: 'actions' },
          h('a', { class: 'button button-quiet', href: '#/vendor/profile' }, t('vendor.edit_profile')),
          h('a', { class: 'button', href: `#/vendor/markets/${encodeURIComponent(vendor.city)}`, dataset: { action: 'browse' } }, t('vendor.find_market')))),
      h('section', { class: 'today-stall', 'aria-labelledby': 'vt-h' },
        h('h2', { id: 'vt-h' }, t('live.today_heading')),
        todays.length
          ? todays.map((a) => livePanel(ctx, a, tz))
          : h('p', { class: 'muted' }, t('live.none_today'))),
      h('section', { 'aria-labelledby': 'va-h' },
        h('h2', { id: 'va-h' }, t('vendor.applications')),
        apps.length
          ? h('ul', { id: 'applications', class: 'applications' }, apps.map((a) => applicationItem(ctx, a, tz)))
          : h('p', { class: 'muted', id: 'applications-empty' }, t('vendor.no_applications'))),
    ];
  },
};

// ---------- markets ----------

function scheduleText(market) {
  return (market.schedule ?? []).map((s) => t('market.schedule_entry', { day: weekdayName(s.weekday), opens: s.opens, closes: s.closes })).join(' · ');
}

export const marketsPage = {
  name: 'vendor-markets',
  access: 'signedin',
  async load(ctx) {
    const city = ctx.useCity(ctx.params.city) ?? state.city;
    const markets = await allPages(`cities/${encodeURIComponent(city.slug)}/markets`, {}, { max: 3, signal: ctx.signal });
    return { city, markets };
  },
  render(ctx, { city, markets }) {
    return [
      h('h1', { tabindex: '-1' }, t('markets.heading', { city: city.name })),
      h('p', { class: 'muted' }, t('markets.city_hint')),
      markets.length
        ? h('ul', { id: 'markets-list', class: 'cards' }, markets.map((m) => h('li', { class: 'card', dataset: { marketId: m.id } },
          h('h2', { class: 'card-title' }, m.name),
          h('p', { class: 'muted' }, m.place?.name ?? ''),
          h('p', {}, scheduleText(m)),
          m.categories?.length ? h('p', { class: 'muted' }, m.categories.join(', ')) : null,
          m.description ? h('p', {}, m.description) : null,
          h('a', { class: 'button', href: `#/vendor/apply/${encodeURIComponent(m.id)}`, dataset: { action: 'apply' }, 'aria-label': t('markets.apply_to', { market: m.name }) }, t('markets.apply')))))
        : h('p', { class: 'empty' }, t('markets.none')),
    ];
  },
};

// ---------- apply ----------

export const applyPage = {
  name: 'vendor-apply',
  access: 'signedin',
  async load(ctx) {
    const id = ctx.params.id;
    const market = await api('GET', `markets/${encodeURIComponent(id)}`, { auth: false, signal: ctx.signal });
    const vendors = await myVendors(ctx.signal);
    const vendor = chosenVendor(vendors, market.city);
    const range = await api('GET', `cities/${encodeURIComponent(market.city)}/market-days`, {
      auth: false, signal: ctx.signal, query: { market_id: id, to: ctx.state.to },
    });
    const apps = vendor
      ? await allPages(`vendors/${vendor.id}/applications`, { market_id: id, from: range.from }, { max: 3, signal: ctx.signal })
      : [];
    return { market, vendor, range, apps };
  },
  render(ctx, { market, vendor, range, apps }) {
    const tz = cityTz(market.city);
    if (!vendor) {
      return [
        h('h1', { tabindex: '-1' }, t('apply.heading', { market: market.name })),
        h('p', { class: 'empty' }, t('apply.no_profile', { city: cityName(market.city) })),
        h('a', { class: 'button', href: '#/vendor/profile' }, t('profile.create')),
      ];
    }
    const byDay = new Map(apps.map((a) => [a.market_day_id, a]));
    const days = (range.items ?? []).filter((d) => d.market?.id === market.id);
    const pitches = [...new Set(days.flatMap((d) => (d.pitches ?? []).map((p) => p.code)))].sort((a, b) => collator().compare(a, b));
    const result = h('div', { id: 'apply-result', class: 'apply-result' });

    const dateChoices = days.map((d, i) => {
      const app = byDay.get(d.id);
      const cid = `apply-date-${i}`;
      const closed = ['closed', 'cancelled'].includes(d.status);
      return h('div', { class: 'choice', dataset: { marketDayId: d.id } },
        h('input', { type: 'checkbox', id: cid, name: 'date', value: d.date, disabled: Boolean(app) || closed, dataset: { marketDayId: d.id } }),
        h('label', { for: cid },
          t('apply.date_choice', { date: formatDate(d.date, 'full'), start: formatTime(d.starts_at, tz), end: formatTime(d.ends_at, tz) }),
          app ? h('span', { class: 'choice-note' }, ' — ', applicationState(app, tz)) : null,
          closed ? h('span', { class: 'choice-note' }, ' — ', tEnum('market_day.status', d.status)) : null));
    });

    const form = h('form', { class: 'form card', dataset: { form: 'apply' }, novalidate: true, onsubmit: submit },
      formError(),
      h('fieldset', { class: 'field-group', dataset: { field: 'mode' } },
        h('legend', {}, t('apply.what')),
        h('div', { class: 'choice' },
          h('input', { type: 'radio', id: 'apply-mode-dates', name: 'mode', value: 'dates', checked: true, onchange: sync }),
          h('label', { for: 'apply-mode-dates' }, t('apply.mode_dates'))),
        h('div', { class: 'choice' },
          h('input', { type: 'radio', id: 'apply-mode-season', name: 'mode', value: 'season', onchange: sync }),
          h('label', { for: 'apply-mode-season' }, t('apply.mode_season', {
            start: formatDate(market.season_start, 'medium'),
            end: market.season_end ? formatDate(market.season_end, 'medium') : t('apply.open_ended'),
          })))),
      h('fieldset', { class: 'field-group', dataset: { field: 'dates' }, id: 'apply-dates' },
        h('legend', {}, t('apply.dates')),
        days.length ? h('div', { class: 'choices' }, dateChoices) : h('p', { class: 'muted' }, t('apply.no_dates')),
        h('p', { class: 'field-error', hidden: true }),
        h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'later' }, onclick: () => {
          ctx.state.to = addDays(range.to, 14);
          ctx.reload();
        } }, t('apply.later_dates'))),
      field({ name: 'pitch', label: t('apply.pitch'), kind: 'select', options: [{ value: '', label: t('apply.any_pitch') }, ...pitches.map((p) => ({ value: p, label: p }))] }),
      field({ name: 'note', label: t('apply.note'), hint: t('apply.note_hint'), kind: 'textarea', rows: 3, maxlength: 500 }),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, t('apply.submit'))),
    );

    function sync() {
      const season = form.elements.mode.value === 'season';
      for (const c of form.querySelectorAll('#apply-dates input')) c.disabled = season || c.hasAttribute('data-locked');
    }
    for (const c of form.querySelectorAll('#apply-dates input:disabled')) c.setAttribute('data-locked', '');

    async function submit(ev) {
      ev.preventDefault();
      const season = form.elements.mode.value === 'season';
      const dates = values(form, 'date');
      const pitch = form.elements.pitch.value;
      const note = form.elements.note.value.trim();
      if (!season && !dates.length) {
        showErrors(form, new AppError({ errors: [{ field: 'dates', message: t('apply.choose_dates') }] }));
        return;
      }
      const extra = {};
      if (pitch) extra.pitch = pitch;
      if (note) extra.note = note;
      let out;
      if (!season && dates.length === 1) {
        const day = days.find((d) => d.date === dates[0]);
        const body = { vendor_id: vendor.id, ...extra };
        const app = await run(`apply:${day.id}`, 'POST', `market-days/${day.id}/applications`, body, { form, ok: (a) => t('apply.done_one', { state: applicationState(a, tz) }) });
        out = app ? { items: [app], skipped: [] } : null;
      } else {
        const body = season ? { vendor_id: vendor.id, season: true, ...extra } : { vendor_id: vendor.id, dates, ...extra };
        out = await run(`apply:${market.id}`, 'POST', `markets/${market.id}/applications`, body, {
          form, fieldMap: { dates: 'dates', vendor_id: 'mode' },
          ok: (b) => tn('apply.done_many', (b.items ?? []).length),
        });
      }
      if (!out) return;
      const rows = [
        ...(out.items ?? []).map((a) => h('li', { dataset: { date: a.market_day?.date, status: a.status, applicationId: a.id } },
          marketDayLine(a.market_day, tz), ': ', applicationState(a, tz))),
        ...(out.skipped ?? []).map((s) => h('li', { dataset: { date: s.date, status: 'skipped' } },
          formatDate(s.date, 'medium'), ': ', tEnum('apply.skip', s.reason))),
        ...(out.upcoming_dates ?? []).slice(0, 10).map((d) => h('li', { dataset: { date: d, status: 'upcoming' } },
          formatDate(d, 'medium'), ': ', t('apply.upcoming'))),
      ];
      result.replaceChildren(
        h('h2', { tabindex: '-1' }, t('apply.result')),
        h('ul', {}, rows),
        h('a', { class: 'button', href: '#/vendor', dataset: { action: 'see-applications' } }, t('apply.see_applications')),
      );
      result.querySelector('h2').focus();
      for (const d of dates) {
        const c = form.querySelector(`input[name="date"][value="${d}"]`);
        if (c) { c.checked = false; c.disabled = true; c.setAttribute('data-locked', ''); }
      }
    }

    return [
      h('h1', { tabindex: '-1' }, t('apply.heading', { market: market.name })),
      h('p', { class: 'muted' }, market.place?.name ?? '', ' · ', scheduleText(market)),
      h('p', {}, t('apply.as_vendor', { name: vendor.name })),
      form,
      result,
    ];
  },
};
