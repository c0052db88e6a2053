// The admin console. It holds no authority of its own: every action is a call to the users or
// invitations API, authenticated by the HttpOnly session cookie plus the page's CSRF token.

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const CSRF_TOKEN = $('meta[name="csrf-token"]').content;
const IDLE_SECONDS = Number($('meta[name="session-idle-seconds"]').content);
const MY_ID = $('meta[name="user-id"]').content;
const PAGE_SIZE = 25;
const REFRESH_EVERY_MS = 3000;
const RENEW_AFTER_MS = 60_000;
const IMPORT_POLL_MS = 500;

const STATUS_WORDS = { pending: "Pending", active: "Active", deactivated: "Deactivated" };
const INVITATION_WORDS = {
  pending: "Pending",
  retrying: "Retrying",
  sent: "Sent",
  failed: "Failed",
  accepted: "Accepted",
  revoked: "Revoked",
  expired: "Expired",
};
// Roles worth a word beside an invitation's address: every account is a user anyway.
const ROLE_WORDS = { admin: "Admin" };
const OUTCOME_WORDS = {
  queued: "Invitation queued",
  invalid: "Invalid",
  already_member: "Already a member",
  already_invited: "Already invited",
  duplicate_in_request: "Duplicate in this list",
};
// A CSV file's rows, counted by outcome: the same words, in this order.
const ROW_OUTCOME_WORDS = { ...OUTCOME_WORDS, duplicate_in_request: "Duplicate in this file" };
// An invitation whose link can still be used, now or after a resend.
const OPEN_STATUSES = ["pending", "retrying", "sent", "failed", "expired"];
const LINK_WORDS = { active: "Active", expired: "Expired", used_up: "Used up", revoked: "Revoked" };
const MAX_LINK_USES = 10_000;
// What happened, in the words of the Audit view's action filter (console.html).
const AUDIT_WORDS = {
  "invitation.sent": "Invited",
  "invitation.resent": "Resent invitation",
  "invitation.revoked": "Revoked invitation",
  "link.created": "Created link",
  "link.regenerated": "Regenerated link",
  "link.revoked": "Revoked link",
  "link.redeemed": "Joined through a link",
  "user.created": "Created account",
  "user.joined": "Joined through an invitation",
  "user.activated": "Signed in for the first time",
  "user.updated": "Edited account",
  "user.password_set": "Set password",
  "user.avatar_changed": "Changed profile picture",
  "user.deactivated": "Deactivated account",
  "user.reactivated": "Reactivated account",
};
// The names an account's edit lists as changed; others are shown as they come.
const CHANGE_WORDS = {
  name: "name",
  username: "username",
  email: "email",
  roles: "roles",
  verified: "email verified",
  require_password_change: "password change required",
  status_text: "status message",
  bio: "bio",
  nickname: "nickname",
  avatar: "profile picture",
  password: "password",
  deactivated: "deactivated",
  status: "status",
};

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `request failed (${status})`);
    this.status = status;
    this.detail = detail;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = CSRF_TOKEN;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body instanceof Blob) {
    // A file sent as it is (a CSV of addresses): its type is the request's.
    headers["Content-Type"] = body.type || "application/octet-stream";
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check your connection and try again.");
  }
  if (response.status === 401) {
    sessionEnded();
    throw new ApiError(401, "Your session has ended.");
  }
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer.detail ?? null);
  return answer;
}

function sessionEnded() {
  location.assign("/?session=ended");
}

// ---------------------------------------------------------------- idle expiry

// Renew the session on what a person does, never on background refreshes, so an unattended
// console signs itself out after the idle time.
let lastRenewal = Date.now();
let lastActivity = Date.now();

function onActivity() {
  lastActivity = Date.now();
  if (lastActivity - lastRenewal < RENEW_AFTER_MS) return;
  lastRenewal = lastActivity;
  api("POST", "/api/v1/auth/session").catch(() => {});
}

for (const kind of ["pointerdown", "keydown"]) {
  document.addEventListener(kind, onActivity, { passive: true, capture: true });
}
setInterval(() => {
  if (Date.now() - lastActivity > IDLE_SECONDS * 1000) sessionEnded();
}, 15_000);

// ---------------------------------------------------------------- small helpers

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});
const formatDate = (value) => (value ? dateFormat.format(new Date(value)) : "—");
const formatDateTime = (value) => (value ? dateTimeFormat.format(new Date(value)) : "—");

function badge(kind, word) {
  return element("span", { class: `badge badge-${kind}` }, word);
}

let toastTimer;
function toast(text, { error = false } = {}) {
  const box = $("#toast");
  box.textContent = text;
  box.classList.toggle("toast-error", error);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 6000);
}

function describe(error) {
  if (Array.isArray(error.detail)) return error.detail.map((item) => item.msg).join("; ");
  return error.message;
}

// The API names the field of each problem in `loc` (["body", "email"], or ["body", "roles", 0]
// for one item of a list): show each beside its field.
function showFieldErrors(form, prefix, error, generalBox) {
  clearFieldErrors(form, generalBox);
  const unplaced = [];
  const problems = Array.isArray(error.detail) ? error.detail : [{ msg: describe(error) }];
  let first;
  for (const problem of problems) {
    const field = Array.isArray(problem.loc)
      ? problem.loc.findLast((part) => typeof part === "string")
      : null;
    const box = field ? $(`#${prefix}-${field}-error`, form) : null;
    if (!box) {
      unplaced.push(problem.msg);
      continue;
    }
    box.textContent = problem.msg.replace(/^Value error, /, "");
    for (const input of inputsNamed(form, field)) {
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
  }
  if (unplaced.length) {
    generalBox.textContent = unplaced.join("; ");
    generalBox.hidden = false;
  }
  (first ?? generalBox).focus?.();
}

// One input, or each of a group sharing the name (the roles' checkboxes).
function inputsNamed(form, name) {
  const found = form.elements[name];
  if (found instanceof RadioNodeList) return [...found];
  return found?.setAttribute ? [found] : [];
}

const checkedRoles = (form) => $$('input[name="roles"]:checked', form).map((box) => box.value);

function clearFieldErrors(form, generalBox) {
  for (const box of $$(".field-error", form)) box.textContent = "";
  for (const input of $$("[aria-invalid]", form)) input.removeAttribute("aria-invalid");
  if (generalBox) {
    generalBox.hidden = true;
    generalBox.textContent = "";
  }
}

function confirmAction(title, text, action) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = action;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), {
      once: true,
    });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function debounce(action, ms = 250) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => action(...args), ms);
  };
}

// ---------------------------------------------------------------- lists that keep themselves current

// A list without pages (paged: false) counts its items in words: "3 links", "1 link".
class LiveList {
  constructor({ view, table, count, load, row, empty, noun, one, paged = true }) {
    Object.assign(this, { view, table, count, load, row, empty, noun, one, paged });
    this.offset = 0;
    this.filters = {};
    this.shown = "";
    for (const button of $$("[data-page]", view)) {
      button.addEventListener("click", () => {
        const step = button.dataset.page === "next" ? PAGE_SIZE : -PAGE_SIZE;
        this.offset = Math.max(0, this.offset + step);
        this.refresh();
      });
    }
  }

  setFilter(name, value) {
    this.filters[name] = value;
    this.offset = 0;
    this.refresh();
  }

  async refresh() {
    const query = new URLSearchParams({ limit: PAGE_SIZE, offset: this.offset });
    for (const [name, value] of Object.entries(this.filters)) if (value) query.set(name, value);
    let page;
    try {
      page = await this.load(query);
    } catch (error) {
      if (error.status !== 401) this.count.textContent = describe(error);
      return;
    }
    const fingerprint = JSON.stringify(page);
    if (fingerprint === this.shown) return; // nothing new: keep focus and selection where they are
    this.shown = fingerprint;
    this.render(page);
  }

  render(page) {
    const body = $("tbody", this.table);
    // A control in a row keeps the focus when the rows are rebuilt under it (by a refresh).
    const active = document.activeElement;
    const focused = body.contains(active) ? active.dataset.focusKey : null;
    body.replaceChildren(...page.items.map((item) => this.row(item)));
    if (focused) $(`[data-focus-key="${CSS.escape(focused)}"]`, body)?.focus();
    if (!page.items.length) {
      const columns = $$("thead th", this.table).length;
      body.append(element("tr", {}, element("td", { colspan: columns, class: "empty" }, this.empty)));
    }
    if (!this.paged) {
      const total = page.items.length;
      this.count.textContent = `${total} ${total === 1 ? this.one : this.noun}`;
      return;
    }
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.items.length;
    this.count.textContent = `${first}–${last} of ${page.total} ${this.noun}`;
    $('[data-page="previous"]', this.view).disabled = page.offset === 0;
    $('[data-page="next"]', this.view).disabled = last >= page.total;
  }
}

const users = new LiveList({
  view: $("#users-view"),
  table: $("#users-table"),
  count: $("#users-count"),
  noun: "users",
  empty: "No users match.",
  load: (query) => api("GET", `/api/v1/users?${query}`),
  row: (user) =>
    element(
      "tr",
      { dataset: { userId: user.id }, onclick: () => openUserInfo(user.id) },
      element(
        "td",
        {},
        element(
          "span",
          { class: "name-cell" },
          element("img", { class: "avatar", src: user.avatar_url, alt: "", width: 28, height: 28 }),
        element(
          "button",
          {
            type: "button",
            class: "link-button",
            onclick: (event) => {
              event.stopPropagation();
              openUserInfo(user.id, event.currentTarget);
            },
          },
            user.name,
          ),
        ),
      ),
      element("td", {}, user.username),
      element("td", { class: "wide-only" }, user.email),
      element("td", { class: "wide-only" }, user.roles.join(", ")),
      element("td", {}, badge(user.status, STATUS_WORDS[user.status] ?? user.status)),
      element("td", { class: "wide-only" }, formatDate(user.created_at)),
    ),
});

const invitations = new LiveList({
  view: $("#invitations-view"),
  table: $("#invitations-table"),
  count: $("#invitations-count"),
  noun: "invitations",
  empty: "No invitations match.",
  load: (query) => api("GET", `/api/v1/invitations?${query}`),
  row: (invitation) => {
    const status = element(
      "td",
      {},
      badge(invitation.status, INVITATION_WORDS[invitation.status] ?? invitation.status),
    );
    status.append(...deliveryNotes(invitation), ...reminderNotes(invitation));
    const open = OPEN_STATUSES.includes(invitation.status);
    const actions = element("td", { class: "row-actions" });
    if (open) {
      actions.append(
        ...INVITATION_ACTIONS.map((action) =>
          element(
            "button",
            {
              type: "button",
              class: `${action.style} small`,
              "aria-label": `${action.word} invitation to ${invitation.email}`,
              dataset: { focusKey: `${action.word}-${invitation.id}` },
              onclick: () => act(action, invitation),
            },
            action.word,
          ),
        ),
      );
    }
    return element(
      "tr",
      { dataset: { invitationId: invitation.id } },
      element("td", {}, breakableAddress(invitation.email), ...roleBadges(invitation.roles)),
      status,
      element("td", { class: "wide-only" }, formatDateTime(invitation.expires_at)),
      element("td", { class: "wide-only" }, String(invitation.sends)),
      inviterCell(invitation),
      actions,
    );
  },
});

// An address that may wrap before its @ on a phone (the text stays the address).
function breakableAddress(address) {
  const at = address.lastIndexOf("@");
  if (at <= 0) return element("span", { class: "address" }, address);
  const part = (text) => element("span", {}, text);
  return element("span", { class: "address" }, part(address.slice(0, at)), part(address.slice(at)));
}

// An invitation that makes more than a plain user says so beside its address, on every screen
// size: whoever uses the link gets these roles.
function roleBadges(roles = []) {
  const notable = roles.filter((role) => role in ROLE_WORDS);
  if (!notable.length) return [];
  return [
    element("span", { class: "visually-hidden" }, ", joins as "),
    ...notable.map((role) => badge("role", ROLE_WORDS[role])),
  ];
}

// Why the email has not gone out yet, or never will, in words beside the badge (never its colour
// alone). Retrying: the server's last answer and when the mailer tries again, in local time; the
// mailer promises that time as the latest, so "by".
function deliveryNotes(invitation) {
  const notes = [];
  if (["failed", "retrying"].includes(invitation.status) && invitation.last_error) {
    notes.push(element("span", { class: "reason" }, invitation.last_error));
  }
  if (invitation.status === "retrying" && invitation.next_attempt_at) {
    notes.push(
      element(
        "span",
        { class: "reason" },
        "Next attempt by ",
        element(
          "time",
          { datetime: invitation.next_attempt_at },
          formatDateTime(invitation.next_attempt_at),
        ),
      ),
    );
  }
  return notes;
}

// The one automatic reminder: the day it goes (while the invitation waits to be accepted), or the
// day it went, in local time.
function reminderNotes(invitation) {
  const note = (words, when) =>
    element(
      "span",
      { class: "reason" },
      words,
      element("time", { datetime: when }, formatDate(when)),
    );
  if (invitation.reminded_at) return [note("Reminded ", invitation.reminded_at)];
  if (invitation.remind_at && ["pending", "retrying", "sent"].includes(invitation.status)) {
    return [note("Reminder on ", invitation.remind_at)];
  }
  return [];
}

// Who invited; beside the admin's own open invitations, whether they get an email when it is
// accepted (only while their own setting lets any such email go).
function inviterCell(invitation) {
  const cell = element("td", { class: "wide-only" }, invitation.inviter_name ?? "—");
  if (invitation.inviter_id !== MY_ID || notifySetting !== true) return cell;
  if (!OPEN_STATUSES.includes(invitation.status)) return cell;
  cell.append(
    element(
      "label",
      { class: "check row-check" },
      element("input", {
        type: "checkbox",
        checked: invitation.notify_inviter,
        dataset: { focusKey: `notify-${invitation.id}` },
        onchange: (event) => changeAcceptanceNotice(invitation, event.currentTarget),
      }),
      "Email me when accepted",
      element("span", { class: "visually-hidden" }, ` (invitation to ${invitation.email})`),
    ),
  );
  return cell;
}

async function changeAcceptanceNotice(invitation, box) {
  const on = box.checked;
  try {
    await api("PATCH", `/api/v1/invitations/${invitation.id}`, { notify_inviter: on });
    toast(
      on
        ? `You will get an email when ${invitation.email} joins.`
        : `You will get no email when ${invitation.email} joins.`,
    );
  } catch (error) {
    box.checked = !on;
    toast(describe(error), { error: true });
  }
  invitations.refresh();
}

// What an admin may do to an open invitation; each asks first.
const INVITATION_ACTIONS = [
  {
    word: "Resend",
    style: "secondary",
    question: (invitation) => `${invitation.email} gets the invitation email again.`,
    call: (invitation) => api("POST", `/api/v1/invitations/${invitation.id}/resend`),
    done: (invitation, answer) =>
      answer.warning ?? `Invitation to ${invitation.email} is being sent again.`,
  },
  {
    word: "Revoke",
    style: "danger",
    question: (invitation) => `The link sent to ${invitation.email} stops working at once.`,
    call: (invitation) => api("DELETE", `/api/v1/invitations/${invitation.id}`),
    done: (invitation) => `Invitation to ${invitation.email} revoked.`,
  },
];

async function act(action, invitation) {
  const title = `${action.word} invitation?`;
  if (!(await confirmAction(title, action.question(invitation), action.word))) return;
  try {
    toast(action.done(invitation, await action.call(invitation)));
  } catch (error) {
    toast(describe(error), { error: true });
  }
  invitations.refresh();
}

// ---------------------------------------------------------------- invite links

// Reusable links: anyone holding one may join, up to its uses, so each row says what it gives
// and to whom; only an active link can be copied, regenerated or revoked.
const links = new LiveList({
  view: $("#links-view"),
  table: $("#links-table"),
  count: $("#links-count"),
  noun: "links",
  one: "link",
  paged: false,
  empty: "No invite links yet. New link creates one.",
  load: () => api("GET", "/api/v1/invitations/links"),
  row: (link) => {
    const active = link.status === "active";
    const name = linkName(link);
    // The URL on one line (cut short with an ellipsis where it must: Copy link takes it whole).
    const url = element("code", { class: "link-url", title: link.url }, link.url);
    const tools = element("span", { class: "link-tools" });
    if (active) {
      tools.append(
        element(
          "button",
          {
            type: "button",
            class: "secondary small",
            "aria-label": `Copy link ${name}`,
            dataset: { focusKey: `copy-${link.id}` },
            onclick: () => copyLink(link.url, url),
          },
          "Copy link",
        ),
      );
    }
    tools.append(...roleBadges(link.roles));
    const created = dated("Created ", link.created_at, formatDate, ` by ${link.creator_name ?? "—"}`);
    created.classList.add("wide-only");
    const linkCell = element(
      "td",
      { class: active ? "link-cell" : "link-cell link-dead" },
      url,
      tools.childElementCount ? tools : null,
      created,
    );
    if (link.regenerated_at) linkCell.append(dated("New URL since ", link.regenerated_at));
    const status = element(
      "td",
      {},
      // Where the focus goes once the row's buttons are gone (revoked).
      element(
        "span",
        { tabindex: -1, class: "focus-target", dataset: { focusKey: `status-${link.id}` } },
        badge(link.status, LINK_WORDS[link.status] ?? link.status),
      ),
      // At phone width the columns that are hidden, in words under the status.
      element("span", { class: "reason narrow-only" }, `${usesWords(link)} used`),
      element("span", { class: "reason narrow-only" }, domainWords(link)),
    );
    if (link.revoked_at) status.append(dated("Revoked ", link.revoked_at, formatDate));
    const actions = element("td", { class: "row-actions stacked" });
    if (active) {
      actions.append(
        ...LINK_ACTIONS.map((action) =>
          element(
            "button",
            {
              type: "button",
              class: `${action.style} small`,
              "aria-label": `${action.word} link ${name}`,
              dataset: { focusKey: `${action.word}-${link.id}` },
              onclick: () => actOnLink(action, link),
            },
            action.word,
          ),
        ),
      );
    }
    return element(
      "tr",
      { dataset: { linkId: link.id } },
      linkCell,
      status,
      element("td", { class: "wide-only nowrap" }, usesWords(link)),
      element(
        "td",
        { class: "wide-only" },
        link.expires_at
          ? element("time", { datetime: link.expires_at }, formatDateTime(link.expires_at))
          : "Never",
      ),
      element(
        "td",
        { class: "wide-only" },
        domainWords(link),
        element("span", { class: "reason" }, `Roles: ${link.roles.join(", ")}`),
      ),
      actions,
    );
  },
});

const usesWords = (link) => `${link.uses} of ${link.max_uses}`;
const domainWords = (link) =>
  link.allowed_domain ? `Only @${link.allowed_domain} addresses` : "Any address";

// A link has no name of its own: its domain and when it was made tell it apart from the others.
function linkName(link) {
  const whom = link.allowed_domain ? `for @${link.allowed_domain}` : "for any address";
  return `${whom}, created ${formatDateTime(link.created_at)}`;
}

function dated(words, when, format = formatDateTime, after = "") {
  const time = element("time", { datetime: when }, format(when));
  return element("span", { class: "reason" }, words, time, after);
}

// The Clipboard API where the browser offers it; else the URL is selected, to copy by hand.
async function copyLink(url, shown) {
  try {
    if (!navigator.clipboard?.writeText) throw new Error("no clipboard");
    await navigator.clipboard.writeText(url);
    toast("Link copied. Anyone with it can join: share it only with the people it is for.");
  } catch {
    selectText(shown);
    toast("The link is selected: press Ctrl+C (⌘C on a Mac) to copy it.");
  }
}

function selectText(node) {
  if (node instanceof HTMLInputElement) {
    node.focus();
    node.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

// What an admin may do to an active link; each asks first.
const LINK_ACTIONS = [
  {
    word: "Regenerate",
    style: "secondary",
    question: () =>
      "The link gets a new URL and the current one stops working at once: whoever has it " +
      "needs the new one. Its uses, expiry and roles stay.",
    call: (link) => api("POST", `/api/v1/invitations/links/${link.id}/regenerate`),
    done: () => "Link regenerated: the old URL no longer works. Copy the new one to share it.",
  },
  {
    word: "Revoke",
    style: "danger",
    question: () =>
      "The link stops working at once: nobody else can join with it. Accounts already made " +
      "with it stay.",
    call: (link) => api("DELETE", `/api/v1/invitations/links/${link.id}`),
    done: () => "Link revoked: nobody else can join with it.",
    // Its buttons are gone: the focus goes to its status, which says Revoked.
    focus: (link) => `status-${link.id}`,
  },
];

async function actOnLink(action, link) {
  const title = `${action.word} link?`;
  if (!(await confirmAction(title, action.question(link), action.word))) return;
  try {
    toast(action.done(link, await action.call(link)));
  } catch (error) {
    toast(describe(error), { error: true });
  }
  await links.refresh();
  if (action.focus) $(`[data-focus-key="${action.focus(link)}"]`, links.table)?.focus();
}

// ---------------------------------------------------------------- the audit trail

const audit = new LiveList({
  view: $("#audit-view"),
  table: $("#audit-table"),
  count: $("#audit-count"),
  noun: "entries",
  empty: "Nothing recorded matches.",
  load: (query) => api("GET", `/api/v1/audit?${query}`),
  row: (entry) => {
    const who = entry.actor_name ?? (entry.actor_id ? "Someone (name unknown)" : "System");
    const details = auditDetails(entry);
    return element(
      "tr",
      { dataset: { entryId: entry.id } },
      element(
        "td",
        { class: "nowrap" },
        element("time", { datetime: entry.occurred_at }, formatDateTime(entry.occurred_at)),
      ),
      element("td", { class: "wide-only" }, who),
      element(
        "td",
        {},
        element("span", { class: "what" }, AUDIT_WORDS[entry.action] ?? entry.action),
        element("span", { class: "reason narrow-only" }, `By ${who}`),
        details ? element("span", { class: "reason narrow-only" }, details) : null,
      ),
      element("td", {}, auditTarget(entry)),
      element("td", { class: "wide-only" }, details || "—"),
    );
  },
});

function auditTarget(entry) {
  const label = entry.target_label;
  if (entry.target_kind === "link") return label ? `Link for @${label}` : "Link for any address";
  if (!label) return "—";
  return entry.target_kind === "invitation" ? breakableAddress(label) : label;
}

// The entry's facts in a few words: what a link or invitation gives, what an edit changed.
// The entries whose roles are what an invitation, a link or a new account gives.
const ROLES_GIVEN = [
  "invitation.sent",
  "invitation.resent",
  "link.created",
  "link.regenerated",
  "link.redeemed",
  "user.created",
  "user.joined",
];

function auditDetails(entry) {
  const facts = entry.details ?? {};
  const parts = [];
  const accounts = (count) => `${count} ${count === 1 ? "account" : "accounts"}`;
  if (["link.created", "link.regenerated"].includes(entry.action)) {
    if (facts.max_uses) parts.push(`up to ${accounts(facts.max_uses)}`);
    parts.push(facts.expires_at ? `expires ${formatDateTime(facts.expires_at)}` : "never expires");
  } else if (facts.email) {
    parts.push(facts.email);
  }
  if (entry.action === "user.updated" && facts.changes?.length) {
    parts.push(`changed ${facts.changes.map((name) => CHANGE_WORDS[name] ?? name).join(", ")}`);
  }
  if (facts.roles?.length && ROLES_GIVEN.includes(entry.action)) {
    parts.push(`roles: ${facts.roles.join(", ")}`);
  } else if (entry.action === "user.updated" && facts.changes?.includes("roles")) {
    parts.push(`roles now: ${(facts.roles ?? []).join(", ")}`);
  }
  if (entry.action.startsWith("invitation.") && facts.expires_at) {
    parts.push(`expires ${formatDateTime(facts.expires_at)}`);
  }
  const text = parts.join("; ");
  // A sentence starts with a capital; an address stays as it is.
  if (!text || parts[0] === facts.email) return text;
  return text[0].toUpperCase() + text.slice(1);
}

// A date input's day (2025-12-03), in the browser's time zone, as the API's instant: its
// midnight, or the midnight days later.
function localMidnight(day, days = 0) {
  if (!day) return "";
  const [year, month, date] = day.split("-").map(Number);
  return new Date(year, month - 1, date + days).toISOString();
}

// ---------------------------------------------------------------- views

const views = { users, invitations, links, audit };
const VIEW_TITLES = {
  users: "Users",
  invitations: "Invitations",
  links: "Invite links",
  audit: "Audit trail",
};
let currentView = "users";

// Each view has its hash (#invitations, #links, #audit; none for Users). Another hash (the skip
// link's #main) keeps the view where it is.
function showView() {
  const asked = location.hash.slice(1);
  if (asked in views) currentView = asked;
  else if (!asked) currentView = "users";
  for (const section of $$("[data-view]")) section.hidden = section.dataset.view !== currentView;
  for (const link of $$("[data-view-link]")) {
    if (link.dataset.viewLink === currentView) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${VIEW_TITLES[currentView]} - ${document.title.split(" - ").pop()}`;
  views[currentView].refresh();
  if (currentView === "invitations") loadNotifySetting();
}

// ---------------------------------------------------------------- the admin's own setting

// "Email me when my invitations are accepted": on the Invitations page, saved on change. The
// Invite form's choice for each invitation starts from it. null until known.
let notifySetting = null;
const notifyToggle = $("#notify-setting");

async function loadNotifySetting() {
  try {
    const settings = await api("GET", "/api/v1/invitations/settings/me");
    applyNotifySetting(settings.notify_on_acceptance);
  } catch (error) {
    if (error.status === 401) return;
    const box = $("#notify-setting-error");
    box.textContent = `Your email setting cannot be shown: ${describe(error)}`;
    box.hidden = false;
  }
}

function applyNotifySetting(on) {
  const changed = notifySetting !== on;
  notifySetting = on;
  notifyToggle.checked = on;
  notifyToggle.disabled = false;
  // The Invite form follows the setting, unless the admin changed the box since.
  const box = inviteForm.elements.notify_inviter;
  const untouched = box.checked === box.defaultChecked;
  box.defaultChecked = on;
  if (untouched) box.checked = on;
  const help = $("#invite-notify-help");
  help.hidden = on;
  if (on) box.removeAttribute("aria-describedby");
  else box.setAttribute("aria-describedby", help.id);
  if (changed) {
    invitations.shown = ""; // the rows' own checkboxes come and go with it
    if (currentView === "invitations") invitations.refresh();
  }
}

// One save at a time, in the order the box was changed.
let settingSaved = Promise.resolve();
notifyToggle.addEventListener("change", () => {
  const on = notifyToggle.checked;
  settingSaved = settingSaved.then(() => saveNotifySetting(on));
});

async function saveNotifySetting(on) {
  const status = $("#notify-setting-status");
  const problem = $("#notify-setting-error");
  problem.hidden = true;
  try {
    const settings = await api("PUT", "/api/v1/invitations/settings/me", {
      notify_on_acceptance: on,
    });
    applyNotifySetting(settings.notify_on_acceptance);
    status.textContent = settings.notify_on_acceptance
      ? "Saved: you will get an email when someone joins through one of your invitations."
      : "Saved: you will get no email when your invitations are accepted.";
  } catch (error) {
    status.textContent = "";
    problem.textContent = `Not saved: ${describe(error)}`;
    problem.hidden = false;
    if (notifySetting !== null) notifyToggle.checked = notifySetting;
  }
}

window.addEventListener("hashchange", showView);
setInterval(() => {
  if (document.visibilityState !== "visible") return;
  views[currentView].refresh();
  // Whether mail can go out changes with the mailer's heartbeat: keep the warning current.
  if (!panel.hidden && !$('[data-panel="invite"]').hidden) showSmtpWarning();
}, REFRESH_EVERY_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") views[currentView].refresh();
});

$("#user-search").addEventListener(
  "input",
  debounce((event) => users.setFilter("search", event.target.value.trim())),
);
$("#status-filter").addEventListener("change", (event) => users.setFilter("status", event.target.value));
$("#invitation-search").addEventListener(
  "input",
  debounce((event) => invitations.setFilter("search", event.target.value.trim())),
);
$("#invitation-status").addEventListener("change", (event) =>
  invitations.setFilter("status", event.target.value),
);
$("#audit-filters").addEventListener("submit", (event) => event.preventDefault());
$("#audit-action").addEventListener("change", (event) =>
  audit.setFilter("action", event.target.value),
);
$("#audit-search").addEventListener(
  "input",
  debounce((event) => audit.setFilter("search", event.target.value.trim())),
);
// Days in the browser's time zone: From at its midnight, To up to the next day's (exclusive).
$("#audit-since").addEventListener("change", (event) => {
  $("#audit-until").min = event.target.value;
  audit.setFilter("since", localMidnight(event.target.value));
});
$("#audit-until").addEventListener("change", (event) => {
  $("#audit-since").max = event.target.value;
  audit.setFilter("until", localMidnight(event.target.value, 1));
});

// ---------------------------------------------------------------- the contextual panel

const panel = $("#panel");
let panelOpener = null;

function openPanel(kind, title, opener) {
  panelOpener = opener ?? document.activeElement;
  $("#panel-title").textContent = title;
  for (const section of $$("[data-panel]", panel)) section.hidden = section.dataset.panel !== kind;
  panel.hidden = false;
  document.body.classList.add("panel-open");
  const first = $(`[data-panel="${kind}"] :is(input, textarea, select, button):not([type=hidden])`, panel);
  (first ?? $("#panel-close")).focus();
}

function closePanel() {
  panel.hidden = true;
  document.body.classList.remove("panel-open");
  panel.dataset.userId = "";
  if (panelOpener && document.contains(panelOpener)) panelOpener.focus();
}

$("#panel-close").addEventListener("click", closePanel);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel.hidden && !$("#confirm").open) closePanel();
});

// ---------------------------------------------------------------- Invite

const inviteForm = $("#invite-form");
// The import whose progress the panel shows, if any.
let importShown = null;

async function openInvite(event) {
  importShown = null;
  inviteForm.hidden = false;
  $("#invite-results").hidden = true;
  clearFieldErrors(inviteForm, $("#invite-error"));
  syncInviteSource();
  openPanel("invite", "Invite Members", event?.currentTarget);
  // Where people are named: the addresses, or the file.
  $(`[data-invite-source="${inviteSource()}"] :is(textarea, input)`, inviteForm).focus();
  await Promise.all([showSmtpWarning(), loadNotifySetting()]);
}

const inviteSource = () => inviteForm.elements.source.value;

// Type addresses, or upload a CSV file: the message, expiry and email choice apply to both;
// a file's roles come from its roles column.
function syncInviteSource() {
  const source = inviteSource();
  for (const part of $$("[data-invite-source]", inviteForm)) {
    part.hidden = part.dataset.inviteSource !== source;
  }
  $("button[type=submit]", inviteForm).textContent = source === "file" ? "Upload and send" : "Send";
}

inviteForm.addEventListener("change", (event) => {
  if (event.target.name === "source") {
    clearFieldErrors(inviteForm, $("#invite-error"));
    syncInviteSource();
  }
});

async function showSmtpWarning() {
  const box = $("#smtp-warning");
  try {
    const status = await api("GET", "/api/v1/invitations/mail-status");
    box.textContent = status.warning ?? "";
    box.hidden = !status.warning;
  } catch (error) {
    box.textContent = `Whether email can go out is unknown: ${describe(error)}`;
    box.hidden = false;
  }
}

$("#invite-button").addEventListener("click", openInvite);
$("[data-open-invite]").addEventListener("click", openInvite);
$("#invite-more").addEventListener("click", () => {
  const source = inviteSource();
  inviteForm.reset();
  inviteForm.elements.source.value = source;
  openInvite();
});

inviteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const general = $("#invite-error");
  clearFieldErrors(inviteForm, general);
  if (inviteSource() === "file") {
    await sendFile(general);
    return;
  }
  const emails = inviteForm.elements.emails.value;
  const roles = checkedRoles(inviteForm);
  const missing = [];
  if (!emails.trim()) missing.push({ loc: ["emails"], msg: "Enter at least one email address." });
  if (!roles.length) missing.push({ loc: ["roles"], msg: "Choose at least one role." });
  if (missing.length) {
    showFieldErrors(inviteForm, "invite", { detail: missing }, general);
    return;
  }
  const button = $("button[type=submit]", inviteForm);
  button.disabled = true;
  try {
    const answer = await api("POST", "/api/v1/invitations", {
      emails,
      message: inviteForm.elements.message.value || null,
      expires_in_hours: Number(inviteForm.elements.expires_in_hours.value),
      roles,
      notify_inviter: inviteForm.elements.notify_inviter.checked,
    });
    showInviteResults(answer, roles);
    // The next invitation starts from the defaults: an admin role is never carried over unseen.
    inviteForm.reset();
    invitations.refresh();
  } catch (error) {
    showFieldErrors(inviteForm, "invite", error, general);
  } finally {
    button.disabled = false;
  }
});

function showInviteResults(answer, roles) {
  const queued = answer.queued;
  const others = answer.results.length - queued;
  let text =
    queued > 0
      ? `Sending invitations: ${queued} ${queued === 1 ? "invitation is" : "invitations are"} being sent.`
      : "No invitation was sent.";
  if (queued > 0 && roles.includes("admin")) {
    text += ` Whoever joins with ${queued === 1 ? "it" : "them"} becomes an admin.`;
  }
  if (others > 0) text += ` ${others} ${others === 1 ? "address was" : "addresses were"} not invited.`;
  $("#invite-confirmation").textContent = text;
  showResultParts("typed");
  const list = $("#invite-outcomes");
  list.replaceChildren(
    ...answer.results.map((result) =>
      element(
        "li",
        { class: `outcome outcome-${result.outcome}` },
        element("span", { class: "outcome-address" }, result.input),
        element(
          "span",
          { class: "outcome-word" },
          OUTCOME_WORDS[result.outcome] ?? result.outcome,
          result.reason && result.outcome === "invalid" ? `: ${result.reason}` : "",
        ),
      ),
    ),
  );
  const warning = $("#smtp-warning");
  if (answer.warning) {
    warning.textContent = answer.warning;
    warning.hidden = false;
  }
  inviteForm.hidden = true;
  $("#invite-results").hidden = false;
  $("#invite-confirmation").focus?.();
  toast(text);
}

// The results area shows either each typed address's outcome or a file's progress and counts.
function showResultParts(source) {
  $("#invite-outcomes").hidden = source !== "typed";
  for (const id of ["#import-progress-box", "#import-counts", "#import-download"]) {
    $(id).hidden = true;
  }
}

// ---------------------------------------------------------------- Invite: a CSV file

async function sendFile(general) {
  const file = inviteForm.elements.file.files[0];
  if (!file) {
    const missing = [{ loc: ["file"], msg: "Choose a CSV file." }];
    showFieldErrors(inviteForm, "invite", { detail: missing }, general);
    return;
  }
  const query = new URLSearchParams({
    filename: file.name,
    expires_in_hours: inviteForm.elements.expires_in_hours.value,
    notify_inviter: inviteForm.elements.notify_inviter.checked,
  });
  const message = inviteForm.elements.message.value;
  if (message.trim()) query.set("message", message);
  const button = $("button[type=submit]", inviteForm);
  button.disabled = true;
  let job;
  try {
    // The file as it is, as text/csv: the service reads it (and refuses it whole, saying where).
    const body = new Blob([file], { type: "text/csv" });
    job = await api("POST", `/api/v1/invitations/imports?${query}`, body);
  } catch (error) {
    showFieldErrors(inviteForm, "invite", error, general);
    return;
  } finally {
    button.disabled = false;
  }
  inviteForm.reset();
  inviteForm.elements.source.value = "file";
  syncInviteSource();
  importShown = job.id;
  const rows = `${job.total_rows} ${job.total_rows === 1 ? "row" : "rows"}`;
  $("#invite-confirmation").textContent = `${job.filename ?? "The file"} was accepted: inviting its ${rows}.`;
  showResultParts("file");
  inviteForm.hidden = true;
  $("#invite-results").hidden = false;
  $("#invite-confirmation").focus();
  followImport(job);
}

// Shows the job's progress until it is done, then what became of its rows. It follows the job
// to the end even when the panel moves on, and says how it ended.
async function followImport(job) {
  showImport(job);
  while (job.status !== "done") {
    await sleep(IMPORT_POLL_MS);
    try {
      job = await api("GET", `/api/v1/invitations/imports/${job.id}`);
    } catch (error) {
      if (error.status === 401) return;
      if (importShown === job.id) {
        const text = `Progress unknown (${describe(error)}); asking again…`;
        $("#import-progress-text").textContent = text;
      }
      if (error.status >= 400 && error.status < 500 && error.status !== 429) return;
      await sleep(IMPORT_POLL_MS * 3);
      continue;
    }
    showImport(job);
  }
  invitations.refresh();
  toast(importSummary(job));
}

function showImport(job) {
  if (importShown !== job.id) return;
  const done = job.status === "done";
  const progress = $("#import-progress");
  progress.max = Math.max(job.total_rows, 1);
  progress.value = job.processed_rows;
  $("#import-progress-text").textContent = `Inviting… ${job.processed_rows} of ${job.total_rows} rows`;
  $("#import-progress-box").hidden = done;
  if (!done) return;
  $("#invite-confirmation").textContent = importSummary(job);
  const known = Object.keys(ROW_OUTCOME_WORDS).filter((outcome) => job.outcomes[outcome]);
  const others = Object.keys(job.outcomes).filter((outcome) => !(outcome in ROW_OUTCOME_WORDS));
  $("#import-counts").replaceChildren(
    ...[...known, ...others].map((outcome) =>
      element(
        "li",
        { class: `outcome outcome-count outcome-${outcome}` },
        element("span", { class: "outcome-word" }, ROW_OUTCOME_WORDS[outcome] ?? outcome),
        element("span", { class: "visually-hidden" }, ": "),
        element("span", { class: "outcome-total" }, String(job.outcomes[outcome])),
      ),
    ),
  );
  $("#import-counts").hidden = false;
  const download = $("#import-download");
  download.href = job.results_url;
  download.hidden = false;
}

function importSummary(job) {
  const queued = job.queued;
  const others = job.total_rows - queued;
  let text = `${job.filename ?? "The file"}: `;
  text +=
    queued > 0
      ? `${queued} ${queued === 1 ? "invitation is" : "invitations are"} being sent.`
      : "no invitation was sent.";
  if (others > 0) text += ` ${others} ${others === 1 ? "row was" : "rows were"} not invited.`;
  return text;
}

// ---------------------------------------------------------------- New link

const linkForm = $("#link-form");
const NEVER_REFUSED = /never expire/i;
// A string refusal names no field: these words tell which one it is about.
const LINK_PROBLEM_FIELDS = [
  [/domain/i, "allowed_domain"],
  [/never expire|expires_in_hours/i, "expires_in_hours"],
  [/max_uses/i, "max_uses"],
  [/role|admin/i, "roles"],
];

function openNewLink(opener) {
  linkForm.reset();
  linkForm.hidden = false;
  $("#link-created").hidden = true;
  clearFieldErrors(linkForm, $("#link-error"));
  openPanel("new-link", "New invite link", opener);
}

$("#new-link-button").addEventListener("click", (event) => openNewLink(event.currentTarget));
$("#link-another").addEventListener("click", () => openNewLink(panelOpener));

linkForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const general = $("#link-error");
  clearFieldErrors(linkForm, general);
  const fields = linkForm.elements;
  const maxUses = Number(fields.max_uses.value);
  const roles = checkedRoles(linkForm);
  const missing = [];
  const whole = Number.isInteger(maxUses) && maxUses >= 1 && maxUses <= MAX_LINK_USES;
  if (!fields.max_uses.value || !whole) {
    missing.push({ loc: ["max_uses"], msg: "Enter a whole number from 1 to 10,000." });
  }
  if (!roles.length) missing.push({ loc: ["roles"], msg: "Choose at least one role." });
  if (missing.length) {
    showFieldErrors(linkForm, "link", { detail: missing }, general);
    return;
  }
  const expiry = fields.expires_in_hours.value;
  const body = { max_uses: maxUses, allowed_domain: optional(fields.allowed_domain.value), roles };
  if (expiry === "never") body.never_expires = true;
  else body.expires_in_hours = Number(expiry);
  const button = $("button[type=submit]", linkForm);
  button.disabled = true;
  try {
    const link = await api("POST", "/api/v1/invitations/links", body);
    showCreatedLink(link);
    links.refresh();
  } catch (error) {
    if (typeof error.detail === "string" && NEVER_REFUSED.test(error.detail)) refuseNever();
    showFieldErrors(linkForm, "link", linkProblems(error), general);
  } finally {
    button.disabled = false;
  }
});

// The workspace allows no link without expiry: Never stays in the list, disabled, saying why.
function refuseNever() {
  const never = $("#link-never");
  never.disabled = true;
  never.textContent = "Never (not allowed in this workspace)";
}

// The API's refusal, each problem beside its field: a plain string by its words, a list by loc
// (never_expires belongs to the expiry's choice).
function linkProblems(error) {
  if (Array.isArray(error.detail)) {
    return {
      detail: error.detail.map((problem) =>
        Array.isArray(problem.loc) && problem.loc.includes("never_expires")
          ? { ...problem, loc: ["body", "expires_in_hours"] }
          : problem,
      ),
    };
  }
  if (typeof error.detail !== "string") return error;
  const field = LINK_PROBLEM_FIELDS.find(([words]) => words.test(error.detail))?.[1];
  return { detail: [{ loc: field ? ["body", field] : null, msg: error.detail }] };
}

function showCreatedLink(link) {
  const accounts = `${link.max_uses} ${link.max_uses === 1 ? "account" : "accounts"}`;
  let text = `Link created. It makes up to ${accounts}`;
  text += link.allowed_domain ? ` for @${link.allowed_domain} addresses` : "";
  text += link.expires_at ? ` until ${formatDateTime(link.expires_at)}.` : " and never expires.";
  if (link.roles.includes("admin")) text += " Whoever joins with it becomes an admin.";
  $("#link-confirmation").textContent = text;
  const url = $("#link-created-url");
  url.value = link.url;
  $("#link-created-copy").onclick = () => copyLink(link.url, url);
  // The next link starts from the defaults: an admin role is never carried over unseen.
  linkForm.reset();
  linkForm.hidden = true;
  $("#link-created").hidden = false;
  $("#link-confirmation").focus();
  toast("Link created.");
}

// ---------------------------------------------------------------- New user

const newUserForm = $("#new-user-form");

function syncPasswordMode() {
  const typed = newUserForm.elements.password_mode.value === "typed";
  $('[data-when-password="typed"]', newUserForm).hidden = !typed;
  newUserForm.elements.password.required = typed;
  if (!typed) newUserForm.elements.send_welcome_email.checked = true;
}

newUserForm.addEventListener("change", (event) => {
  if (event.target.name === "password_mode") syncPasswordMode();
});

$("#new-user-button").addEventListener("click", (event) => {
  newUserForm.reset();
  clearFieldErrors(newUserForm, $("#new-user-error"));
  syncPasswordMode();
  openPanel("new-user", "New user", event.currentTarget);
});

const optional = (value) => (value.trim() ? value.trim() : null);

newUserForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const general = $("#new-user-error");
  clearFieldErrors(newUserForm, general);
  const fields = newUserForm.elements;
  const byLink = fields.password_mode.value === "link";
  const body = {
    name: fields.name.value,
    username: fields.username.value,
    email: fields.email.value,
    verified: fields.verified.checked,
    password: byLink ? null : fields.password.value,
    set_random_password: byLink,
    require_password_change: fields.require_password_change.checked,
    roles: checkedRoles(newUserForm),
    send_welcome_email: fields.send_welcome_email.checked || byLink,
    status_text: optional(fields.status_text.value),
    bio: optional(fields.bio.value),
    nickname: optional(fields.nickname.value),
  };
  const button = $("button[type=submit]", newUserForm);
  button.disabled = true;
  try {
    const user = await api("POST", "/api/v1/users", body);
    let text = `${user.name} was added as Pending until their first login.`;
    if (user.welcome_email?.note) text += ` ${user.welcome_email.note}`;
    toast(text);
    closePanel();
    users.refresh();
  } catch (error) {
    showFieldErrors(newUserForm, "new", error, general);
  } finally {
    button.disabled = false;
  }
});

// ---------------------------------------------------------------- User Info

const editForm = $("#edit-user-form");
const avatarForm = $("#avatar-form");
let shownUser = null;

async function openUserInfo(userId, opener) {
  let user;
  try {
    user = await api("GET", `/api/v1/users/${userId}`);
  } catch (error) {
    toast(describe(error), { error: true });
    return;
  }
  clearFieldErrors(editForm, $("#edit-user-error"));
  clearFieldErrors(avatarForm);
  avatarForm.reset();
  $("#avatar-preview").hidden = true;
  fillUserInfo(user);
  openPanel("user-info", "User Info", opener ?? $(`tr[data-user-id="${userId}"] button`));
}

function fillUserInfo(user) {
  shownUser = user;
  panel.dataset.userId = user.id;
  $("#info-avatar").src = user.avatar_url;
  $("#info-avatar").alt = `Profile picture of ${user.name}`;
  $("#info-name").textContent = user.name;
  $("#info-username").textContent = `@${user.username}`;
  $("#info-status").replaceChildren(badge(user.status, STATUS_WORDS[user.status] ?? user.status));
  $("#info-email").textContent = user.email + (user.verified ? " (verified)" : "");
  $("#info-roles").textContent = user.roles.join(", ");
  $("#info-created").textContent = formatDateTime(user.created_at);
  $("#info-first-login").textContent = user.first_login_at ? formatDateTime(user.first_login_at) : "Not yet";
  const fields = editForm.elements;
  for (const name of ["name", "username", "email", "status_text", "bio", "nickname"]) {
    fields[name].value = user[name] ?? "";
  }
  fields.verified.checked = user.verified;
  fields.require_password_change.checked = user.require_password_change;
  for (const box of $$('input[name="roles"]', editForm)) box.checked = user.roles.includes(box.value);
  const deactivated = user.status === "deactivated";
  $("#deactivate-button").textContent = deactivated ? "Reactivate" : "Deactivate";
  $("#deactivate-button").className = `${deactivated ? "secondary" : "danger"} wide`;
}

editForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const general = $("#edit-user-error");
  clearFieldErrors(editForm, general);
  const fields = editForm.elements;
  const body = {
    name: fields.name.value,
    username: fields.username.value,
    email: fields.email.value,
    verified: fields.verified.checked,
    require_password_change: fields.require_password_change.checked,
    roles: checkedRoles(editForm),
    status_text: optional(fields.status_text.value),
    bio: optional(fields.bio.value),
    nickname: optional(fields.nickname.value),
  };
  try {
    const user = await api("PATCH", `/api/v1/users/${shownUser.id}`, body);
    fillUserInfo(user);
    toast(`Changes to ${user.name} saved.`);
    users.refresh();
  } catch (error) {
    showFieldErrors(editForm, "edit", error, general);
  }
});

$("#avatar-file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  const preview = $("#avatar-preview");
  clearFieldErrors(avatarForm);
  if (!file) {
    preview.hidden = true;
    return;
  }
  if (!event.target.accept.split(",").includes(file.type)) {
    $("#avatar-error").textContent = "Choose a PNG, JPEG, GIF or WebP image.";
    preview.hidden = true;
    return;
  }
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
});

avatarForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors(avatarForm);
  const file = $("#avatar-file").files[0];
  if (!file) {
    $("#avatar-error").textContent = "Choose a picture first.";
    return;
  }
  const data = new FormData();
  data.append("image", file);
  try {
    const answer = await api("PUT", `/api/v1/users/${shownUser.id}/avatar`, data);
    $("#info-avatar").src = answer.avatar_url;
    $("#avatar-preview").hidden = true;
    avatarForm.reset();
    toast("Profile picture updated.");
    users.refresh();
  } catch (error) {
    $("#avatar-error").textContent = describe(error);
    $("#avatar-file").setAttribute("aria-invalid", "true");
  }
});

$("#avatar-reset").addEventListener("click", async () => {
  try {
    await api("DELETE", `/api/v1/users/${shownUser.id}/avatar`);
    $("#info-avatar").src = `/api/v1/users/${shownUser.id}/avatar?reset=${Date.now()}`;
    toast("Profile picture reset.");
    users.refresh();
  } catch (error) {
    $("#avatar-error").textContent = describe(error);
  }
});

$("#deactivate-button").addEventListener("click", async () => {
  const deactivate = shownUser.status !== "deactivated";
  const sure = await confirmAction(
    deactivate ? `Deactivate ${shownUser.name}?` : `Reactivate ${shownUser.name}?`,
    deactivate
      ? `${shownUser.username} will no longer be able to sign in.`
      : `${shownUser.username} will be able to sign in again.`,
    deactivate ? "Deactivate" : "Reactivate",
  );
  if (!sure) return;
  const general = $("#edit-user-error");
  clearFieldErrors(editForm, general);
  try {
    const user = await api("PATCH", `/api/v1/users/${shownUser.id}`, { deactivated: deactivate });
    fillUserInfo(user);
    toast(deactivate ? `${user.name} is deactivated.` : `${user.name} is active again.`);
    users.refresh();
  } catch (error) {
    general.textContent = describe(error);
    general.hidden = false;
  }
});

// ---------------------------------------------------------------- start

showView();
