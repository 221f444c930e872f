// Form building blocks: labelled fields with a hint and an error slot, and
// problem+json field errors shown next to the fields they name.

import { h, t, errorText, AppError } from './core.js';

let uid = 0;

// field builds a labelled control. label and hint are already translated.
// kind: input (default), textarea, select, checkboxes.
export function field({ name, label, hint, kind = 'input', type = 'text', value, options = [], required, ...attrs }) {
  const id = `f-${name}-${++uid}`;
  const hintId = hint ? `${id}-hint` : null;
  const errId = `${id}-error`;
  const describedBy = [hintId, errId].filter(Boolean).join(' ');
  let control;
  if (kind === 'textarea') {
    control = h('textarea', { id, name, required, 'aria-describedby': describedBy, ...attrs }, value ?? '');
  } else if (kind === 'select') {
    control = h('select', { id, name, required, 'aria-describedby': describedBy, ...attrs },
      options.map((o) => h('option', { value: o.value, selected: String(o.value) === String(value ?? '') }, o.label)));
  } else if (kind === 'checkboxes') {
    const chosen = new Set(value ?? []);
    return h('fieldset', { class: 'field field-group', dataset: { field: name }, 'aria-describedby': describedBy },
      h('legend', {}, label),
      hint && h('p', { id: hintId, class: 'hint' }, hint),
      h('div', { class: 'choices' }, options.map((o, i) => {
        const cid = `${id}-${i}`;
        return h('div', { class: 'choice' },
          h('input', { type: 'checkbox', id: cid, name, value: o.value, checked: chosen.has(o.value) }),
          h('label', { for: cid }, o.label));
      })),
      h('p', { id: errId, class: 'field-error', hidden: true }),
    );
  } else {
    control = h('input', { id, name, type, value: value ?? '', required, 'aria-describedby': describedBy, ...attrs });
  }
  return h('div', { class: 'field', dataset: { field: name } },
    h('label', { for: id }, label, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
    hint && h('p', { id: hintId, class: 'hint' }, hint),
    control,
    h('p', { id: errId, class: 'field-error', hidden: true }),
  );
}

// formError is the form-level message box; put one at the top of each form.
export function formError() {
  return h('div', { class: 'form-error', role: 'alert', dataset: { formError: '' } });
}

export function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) { p.textContent = ''; p.hidden = true; }
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  const box = form.querySelector('[data-form-error]');
  if (box) box.replaceChildren();
}

// showErrors puts each field error of err next to its field (fieldMap maps a
// server field path, such as contact.email or dates[3], to a form field
// name), the rest in the form's box, and moves focus to the first problem.
export function showErrors(form, err, fieldMap = {}) {
  clearErrors(form);
  const unplaced = [];
  let first = null;
  const fieldErrors = err instanceof AppError ? err.errors : [];
  for (const fe of fieldErrors) {
    const base = fe.field.replace(/\[\d+\]/g, '');
    const name = fieldMap[fe.field] ?? fieldMap[base] ?? base.replace(/\./g, '_');
    const wrap = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (!wrap) { unplaced.push(`${fe.field}: ${fe.message}`); continue; }
    const p = wrap.querySelector('.field-error');
    p.textContent = p.textContent ? `${p.textContent} ${fe.message}` : fe.message;
    p.hidden = false;
    for (const c of wrap.querySelectorAll('input, select, textarea')) c.setAttribute('aria-invalid', 'true');
    first ??= wrap.querySelector('input, select, textarea');
  }
  const box = form.querySelector('[data-form-error]');
  if (box && (!fieldErrors.length || unplaced.length)) {
    box.replaceChildren(
      h('p', {}, fieldErrors.length ? t('form.fix_fields') : errorText(err)),
      unplaced.length ? h('ul', {}, unplaced.map((u) => h('li', {}, u))) : null,
    );
  } else if (box && fieldErrors.length) {
    box.replaceChildren(h('p', {}, t('form.fix_fields')));
  }
  (first ?? box)?.focus?.({ preventScroll: false });
  if (!first && box) { box.tabIndex = -1; box.focus(); }
}

// busy disables a form's submit buttons while a request runs.
export function busy(form, on) {
  form.setAttribute('aria-busy', on ? 'true' : 'false');
  for (const b of form.querySelectorAll('button')) b.disabled = on;
}

export function values(form, name) {
  return [...form.querySelectorAll(`[name="${CSS.escape(name)}"]:checked`)].map((c) => c.value);
}

export function splitList(text) {
  return [...new Set(String(text ?? '').split(/[,\n]/).map((s) => s.trim()).filter(Boolean))];
}
