// mmrec web page: vanilla JS over the JSON API of the same server (no build step).
// Every piece of text from the server goes into the DOM as text (textContent), never as HTML.
"use strict";

const KEY_STORAGE = "mmrec-api-key"; // sessionStorage: gone when the tab closes
const USER_STORAGE = "mmrec-user"; // localStorage: a user id is not a secret
const PAGE_SIZE = 48;
const SIMILAR_K = 12;
const RECS_K = 8;
const MODALITY_NAMES = { text: "Text", image: "Image", audio: "Sound" };

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  user: "",
  offset: 0,
  total: 0,
  query: null, // null = catalog; else {kind: "text"|"item"|"upload", ...}
  liked: new Set(),
};

const $ = (selector) => document.querySelector(selector);

/** Build an element: h("div", {class: "x", onclick: fn}, child, "text", …). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Call the API; throws ApiError with the server's one-line `detail` on a 4xx/5xx answer. */
async function api(path, { method = "GET", json, form } = {}) {
  const headers = { Accept: "application/json" };
  if (state.key) headers["X-API-Key"] = state.key;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form; // the browser sets the multipart boundary
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, "cannot reach the server");
  }
  let data = null;
  try {
    data = await res.json();
  } catch (err) {
    data = null;
  }
  if (!res.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `${res.status} ${res.statusText}`;
    if (res.status === 401) askForKey();
    throw new ApiError(res.status, detail);
  }
  return data;
}

/** Item ids contain slashes ("animals/cow"): keep them, escape everything else. */
const idPath = (id) => id.split("/").map(encodeURIComponent).join("/");

// ------------------------------------------------------------------ media

// Without a key, media URLs go straight into src (lazy images, audio fetched on play). With a key (private
// servers), an <img> cannot send a header, so media is fetched with it when it scrolls into view and shown
// from a blob: URL.
const mediaObserver = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      mediaObserver.unobserve(entry.target);
      loadBlob(entry.target);
    }
  },
  { rootMargin: "200px" },
);

async function loadBlob(el) {
  try {
    const res = await fetch(el.dataset.src, { headers: state.key ? { "X-API-Key": state.key } : {} });
    if (!res.ok) return;
    el.src = URL.createObjectURL(await res.blob());
  } catch (err) {
    /* a missing thumbnail is not worth an error message */
  }
}

function setMedia(el, url) {
  if (!state.key) {
    el.src = url;
  } else {
    el.dataset.src = url;
    mediaObserver.observe(el);
  }
  return el;
}

function thumb(item, size = "") {
  const media = item.media || {};
  const box = h("div", { class: `thumb ${size}` });
  if (media.image) {
    box.append(setMedia(h("img", { alt: "", loading: "lazy", decoding: "async" }), media.image));
  } else if (media.audio) {
    box.append(h("span", { class: "placeholder", "aria-hidden": "true" }, "♪"));
  } else {
    box.append(h("span", { class: "placeholder text", "aria-hidden": "true" }, "Aa"));
  }
  return box;
}

function audioPlayer(url, label) {
  return setMedia(h("audio", { controls: true, preload: "none", "aria-label": `Play the sound of ${label}` }), url);
}

// ------------------------------------------------------------------ status

let statusTimer = 0;
function say(message, { error = false } = {}) {
  const el = $("#status");
  el.textContent = message;
  el.className = `status show${error ? " error" : ""}`;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (el.className = "status"), error ? 6000 : 2500);
}

function fail(err) {
  say(err instanceof ApiError ? err.message : String(err), { error: true });
}

function askForKey() {
  const box = $("#key-box");
  box.open = true;
  $("#api-key").focus();
}

// ------------------------------------------------------------------ cards

function modalityOf(item) {
  if (item.has_image !== undefined) {
    return ["text", "image", "audio"].filter((m) => item[`has_${m}`]);
  }
  const mods = Object.keys(item.modality_scores || item.modalities || {});
  if (mods.length) return mods;
  return ["image", "audio"].filter((m) => item.media && item.media[m]);
}

function likeButton(item) {
  const liked = state.liked.has(item.id);
  return h(
    "button",
    {
      type: "button",
      class: "btn small like",
      "aria-pressed": liked ? "true" : "false",
      "aria-label": `Like ${item.title || item.id}`,
      onclick: (ev) => record(item, "like", ev.currentTarget),
    },
    "♥ Like",
  );
}

function card(item) {
  const mods = modalityOf(item);
  const meta = [
    h(
      "span",
      { class: "mods" },
      mods.map((m) => h("span", { class: `mod${item.matched === m ? " hit" : ""}` }, MODALITY_NAMES[m] || m)),
    ),
  ];
  if (typeof item.score === "number") {
    meta.push(h("span", { class: "score" }, item.score.toFixed(2)));
  }
  const main = h(
    "button",
    {
      type: "button",
      class: "card-main",
      onclick: () => showSimilar(item.id),
      title: `Items similar to ${item.title || item.id}`,
    },
    thumb(item),
    h("span", { class: "title" }, item.title || item.id),
    h("span", { class: "meta" }, meta),
  );
  return h(
    "li",
    { class: "card", dataset: { id: item.id } },
    main,
    item.media && item.media.audio ? audioPlayer(item.media.audio, item.title || item.id) : null,
    h("div", { class: "card-actions" }, likeButton(item)),
  );
}

function setHeading(title, sub) {
  $("#results-title").textContent = title;
  $("#results-sub").textContent = sub || "";
}

function renderGrid(items, { append = false } = {}) {
  const grid = $("#grid");
  if (!append) grid.replaceChildren();
  grid.append(...items.map(card));
  if (!grid.children.length) grid.append(h("li", { class: "empty" }, "Nothing found."));
}

function busy(on) {
  $("#grid").setAttribute("aria-busy", on ? "true" : "false");
}

// ------------------------------------------------------------------ views

const modality = () => document.querySelector('input[name="modality"]:checked').value;
const modalityPhrase = () =>
  ({ any: "searching everything", image: "searching images", audio: "searching sounds", text: "searching text" })[
    modality()
  ];

async function showCatalog({ append = false } = {}) {
  state.query = null;
  $("#focus").hidden = true;
  $("#back").hidden = true;
  if (!append) state.offset = 0;
  busy(true);
  try {
    const page = await api(`items?limit=${PAGE_SIZE}&offset=${state.offset}`);
    state.total = page.total;
    state.offset += page.items.length;
    setHeading("Catalog", `${page.total} item${page.total === 1 ? "" : "s"}`);
    renderGrid(page.items, { append });
    $("#more").hidden = state.offset >= state.total;
  } catch (err) {
    fail(err);
  } finally {
    busy(false);
  }
}

function focusHeading() {
  const heading = $("#results-title");
  heading.focus({ preventScroll: true });
  heading.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

async function runQuery() {
  const q = state.query;
  if (!q) return showCatalog();
  $("#more").hidden = true;
  $("#back").hidden = false;
  busy(true);
  try {
    let result;
    if (q.kind === "text") {
      result = await api("similar", { method: "POST", json: { text: q.text, k: 24, modality: modality() } });
      $("#focus").hidden = true;
      setHeading(`Results for “${q.text}”`, `${result.results.length} items · ${modalityPhrase()}`);
    } else if (q.kind === "item") {
      const [item, found] = await Promise.all([
        api(`items/${idPath(q.id)}`),
        api("similar", { method: "POST", json: { item: q.id, k: SIMILAR_K, modality: modality() } }),
      ]);
      result = found;
      renderItemFocus(item);
      setHeading(`Similar to ${item.title || item.id}`, `${result.results.length} items · ${modalityPhrase()}`);
    } else {
      const form = new FormData();
      form.append(q.field, q.file, q.file.name);
      form.append("k", String(SIMILAR_K));
      form.append("modality", modality());
      result = await api("similar", { method: "POST", form });
      renderUploadFocus(q);
      setHeading(`Similar to your ${q.field === "image" ? "image" : "sound"}`, `${result.results.length} items · ${modalityPhrase()}`);
    }
    renderGrid(result.results);
  } catch (err) {
    fail(err);
  } finally {
    busy(false);
  }
}

function renderItemFocus(item) {
  // What the encoders recognise: ImageNet classes for the image, AudioSet classes for the sound.
  const heard = { image: "Looks like", audio: "Sounds like" };
  const labels = Object.entries(item.labels || {}).map(([m, list]) =>
    h(
      "div",
      { class: "chips" },
      h("span", { class: "chips-label" }, heard[m] || m),
      list.slice(0, 3).map((l) => h("span", { class: "chip" }, `${l.label} ${Math.round(l.score * 100)}%`)),
    ),
  );
  // The stored text starts with the title and ends with the tags; show the description in between.
  const lines = (item.text || "").split("\n").filter((line) => !line.startsWith("Tags:"));
  if (lines.length > 1 && lines[0].trim() === (item.title || "").trim()) lines.shift();
  const text = lines.join(" ").trim();
  const body = h(
    "div",
    { class: "focus-body" },
    h("p", { class: "eyebrow" }, "Selected item"),
    h("h3", {}, item.title || item.id),
    h("p", { class: "id" }, item.id),
    text ? h("p", { class: "text" }, text) : null,
    item.media.audio ? audioPlayer(item.media.audio, item.title || item.id) : null,
    labels,
    h("div", { class: "row" }, likeButton(item)),
  );
  $("#focus").replaceChildren(thumb(item, "big"), body);
  $("#focus").hidden = false;
}

function renderUploadFocus(q) {
  const preview =
    q.field === "image"
      ? h("div", { class: "thumb big" }, h("img", { alt: `Your image ${q.file.name}`, src: q.url }))
      : h("div", { class: "thumb big" }, h("span", { class: "placeholder", "aria-hidden": "true" }, "♪"));
  const body = h(
    "div",
    { class: "focus-body" },
    h("p", { class: "eyebrow" }, `Your ${q.field === "image" ? "image" : "sound"}`),
    h("h3", {}, q.file.name),
    q.field === "audio" ? h("audio", { controls: true, src: q.url, "aria-label": "Play your sound" }) : null,
  );
  $("#focus").replaceChildren(preview, body);
  $("#focus").hidden = false;
}

function showSimilar(id) {
  state.query = { kind: "item", id };
  runQuery().then(focusHeading);
}

function searchText(text) {
  state.query = { kind: "text", text };
  runQuery().then(focusHeading);
}

function searchFile(file) {
  const type = file.type || "";
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  let field = null;
  if (type.startsWith("image/") || ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"].includes(ext)) field = "image";
  else if (type.startsWith("audio/") || ["wav", "flac", "ogg", "oga", "mp3"].includes(ext)) field = "audio";
  if (!field) {
    say("Choose an image or a sound file.", { error: true });
    return;
  }
  if (state.query && state.query.url) URL.revokeObjectURL(state.query.url);
  state.query = { kind: "upload", field, file, url: URL.createObjectURL(file) };
  runQuery().then(focusHeading);
}

// ------------------------------------------------------------------ recommendations

function bars(rec) {
  const entries = Object.entries(rec.modalities || {}).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return null;
  return h(
    "div",
    { class: "bars", role: "group", "aria-label": "How much each modality mattered" },
    entries.map(([m, w]) => {
      const pct = Math.round(w * 100);
      const fill = h("span", { class: "bar-fill" });
      fill.style.width = `${pct}%`; // CSSOM, not an inline style attribute: allowed by the page's CSP
      return h(
        "div",
        { class: `bar${rec.matched === m ? " hit" : ""}`, title: rec.matched === m ? "matched this interest best" : "" },
        h("span", { class: "bar-label" }, MODALITY_NAMES[m] || m),
        h("span", { class: "bar-track", role: "img", "aria-label": `${MODALITY_NAMES[m] || m} ${pct}%` }, fill),
        h("span", { class: "bar-val", "aria-hidden": "true" }, `${pct}%`),
      );
    }),
  );
}

function why(rec) {
  if (!rec.because || !rec.because.length) return null;
  const verbs = { like: "liked", purchase: "bought", view: "viewed", click: "opened", rating: "rated" };
  const parts = [];
  rec.because.forEach((b, i) => {
    if (i) parts.push(i === rec.because.length - 1 ? " and " : ", ");
    parts.push(h("b", {}, b.title || b.item));
  });
  const verb = verbs[rec.because[0].event] || "chose";
  return h("p", { class: "why" }, `Because you ${verb} `, parts);
}

function recItem(rec) {
  const label = rec.title || rec.id;
  return h(
    "li",
    { class: "rec", dataset: { id: rec.id } },
    thumb(rec),
    h(
      "button",
      { type: "button", class: "rec-title", onclick: () => showSimilar(rec.id), title: `Items similar to ${label}` },
      label,
      rec.score ? h("span", { class: "score" }, rec.score.toFixed(2)) : null,
    ),
    why(rec),
    bars(rec),
    h(
      "div",
      { class: "rec-actions" },
      h("button", { type: "button", class: "btn small like", "aria-label": `Like ${label}`, onclick: (ev) => record(rec, "like", ev.currentTarget) }, "♥ Like"),
      h("button", { type: "button", class: "btn small", "aria-label": `Skip ${label}`, onclick: (ev) => record(rec, "skip", ev.currentTarget) }, "Skip"),
    ),
  );
}

const STRATEGY_TEXT = {
  hybrid: "Picked from their history by the trained recommender.",
  profile: "Picked from their history.",
  popular: "No history yet: recently popular items. Like a few to personalise.",
  newest: "No history yet: the newest items. Like a few to personalise.",
  query: "No history yet: items near their onboarding text.",
};

async function loadRecs() {
  if (!state.user) return;
  const list = $("#recs");
  list.setAttribute("aria-busy", "true");
  try {
    const res = await api(`users/${encodeURIComponent(state.user)}/recommendations?k=${RECS_K}&explain=true`);
    $("#rec-message").textContent = STRATEGY_TEXT[res.strategy] || res.message;
    list.dataset.strategy = res.strategy;
    list.replaceChildren(...res.items.map(recItem));
    if (!res.items.length) list.append(h("li", { class: "empty" }, "Nothing left to recommend."));
  } catch (err) {
    fail(err);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

async function record(item, event, button) {
  if (!state.user) {
    say("Enter a user first (right-hand panel).", { error: true });
    $("#user").focus();
    return;
  }
  if (button) button.disabled = true;
  try {
    await api("interactions", { method: "POST", json: { user: state.user, item: item.id, event } });
    if (event === "like") {
      state.liked.add(item.id);
      document.querySelectorAll(`.card[data-id="${CSS.escape(item.id)}"] .like`).forEach((b) => b.setAttribute("aria-pressed", "true"));
    }
    say(`${event === "like" ? "Liked" : "Skipped"} ${item.title || item.id} for ${state.user}`);
    await loadRecs();
  } catch (err) {
    fail(err);
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

function setUser(user) {
  state.user = user.trim();
  state.liked = new Set();
  document.querySelectorAll(".like[aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", "false"));
  if (state.user) localStorage.setItem(USER_STORAGE, state.user);
  loadRecs();
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("#search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("#q").value.trim();
    if (text) searchText(text);
    else showCatalog();
  });
  $("#back").addEventListener("click", () => {
    $("#q").value = "";
    showCatalog().then(focusHeading);
  });
  $("#more").addEventListener("click", () => showCatalog({ append: true }));
  document.querySelectorAll('input[name="modality"]').forEach((input) =>
    input.addEventListener("change", () => {
      if (state.query) runQuery();
    }),
  );
  $("#file").addEventListener("change", (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (file) searchFile(file);
    ev.target.value = ""; // choosing the same file again still fires
  });
  const drop = $("#drop");
  for (const name of ["dragenter", "dragover"]) {
    document.addEventListener(name, (ev) => {
      if (!ev.dataTransfer || ![...ev.dataTransfer.types].includes("Files")) return;
      ev.preventDefault();
      drop.classList.add("over");
    });
  }
  document.addEventListener("dragleave", (ev) => {
    if (ev.relatedTarget === null) drop.classList.remove("over");
  });
  document.addEventListener("drop", (ev) => {
    if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    drop.classList.remove("over");
    searchFile(ev.dataTransfer.files[0]);
  });
  $("#user-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setUser($("#user").value);
  });
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.key = $("#api-key").value.trim();
    if (state.key) sessionStorage.setItem(KEY_STORAGE, state.key);
    else sessionStorage.removeItem(KEY_STORAGE);
    $("#key-box").open = false;
    say(state.key ? "API key saved for this tab" : "API key forgotten");
    reload();
  });
  $("#key-clear").addEventListener("click", () => {
    state.key = "";
    $("#api-key").value = "";
    sessionStorage.removeItem(KEY_STORAGE);
    say("API key forgotten");
  });
}

function reload() {
  (state.query ? runQuery() : showCatalog()).then(loadRecs);
}

function start() {
  wire();
  $("#api-key").value = state.key;
  const user = localStorage.getItem(USER_STORAGE);
  if (user) {
    $("#user").value = user;
    state.user = user;
  }
  showCatalog().then(loadRecs);
}

start();
