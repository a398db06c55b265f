// The Try-it page: send a command, draw each answer event from the stream (Server-Sent Events).
"use strict";
(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-text");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const groups = new Map(); // request id -> the list item its answers go in
  log.querySelectorAll("li.turn").forEach(function (item) {
    groups.set(item.dataset.request, item); // the conversation the server already drew
  });
  // Buttons the server drew post without leaving the page, like the ones drawn here.
  log.addEventListener("submit", function (event) {
    const button = event.target.querySelector("button.chat-button");
    if (!button) return;
    event.preventDefault();
    post("/chat/button", { id: button.dataset.id, label: button.textContent, request: newRequest() });
  });

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function group(request) {
    let item = groups.get(request);
    if (!item) {
      item = el("li", "turn");
      item.dataset.request = request;
      log.appendChild(item);
      groups.set(request, item);
    }
    return item;
  }

  function post(url, fields) {
    const body = new URLSearchParams(fields);
    body.set("csrf", csrf);
    return fetch(url, {
      method: "POST",
      body: body,
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (data) {
          const item = el("li", "turn");
          item.appendChild(el("p", "bot error", data.error || "That did not work."));
          log.appendChild(item);
        });
      }
    });
  }

  function newRequest() {
    return Math.random().toString(36).slice(2, 12);
  }

  function drawImages(item, event) {
    const box = el("div", "post");
    box.dataset.batch = event.batch;
    const title = el("h3", "post-title");
    const link = el("a", null, event.title);
    link.href = event.link;
    title.appendChild(link);
    box.appendChild(title);
    if (event.description) box.appendChild(el("p", "post-description", event.description));
    const tags = el("ul", "tags");
    (event.tags || []).forEach(function (tag) { tags.appendChild(el("li", null, tag)); });
    box.appendChild(tags);
    const images = el("div", "post-images");
    event.images.forEach(function (url, n) {
      const img = el("img", event.spoiler ? "spoiler" : null);
      img.src = url;
      img.alt = event.title + ", image " + (n + 1);
      images.appendChild(img);
    });
    box.appendChild(images);
    (event.errors || []).forEach(function (line) { box.appendChild(el("p", "bot error", line)); });
    if (event.note) box.appendChild(el("p", "note", event.note));
    (event.buttons || []).forEach(function (row) {
      const bar = el("div", "buttons");
      row.forEach(function (button) {
        const b = el("button", "chat-button", button.label);
        b.type = "button";
        b.dataset.id = button.id;
        b.addEventListener("click", function () {
          post("/chat/button", { id: button.id, label: button.label, request: newRequest() });
        });
        bar.appendChild(b);
      });
      box.appendChild(bar);
    });
    item.appendChild(box);
  }

  function draw(event) {
    const item = group(event.request || "none");
    const live = item.querySelector(".progress");
    if (event.type === "you") {
      item.appendChild(el("p", "you", event.text));
    } else if (event.type === "ack" || event.type === "progress") {
      const line = live || item.appendChild(el("p", "bot progress"));
      line.textContent = event.text;
      if (event.preview) {
        const img = el("img", "preview");
        img.src = event.preview;
        line.appendChild(img);
      }
      return;
    } else if (event.type === "text") {
      item.appendChild(el("p", "bot text", event.text));
    } else if (event.type === "images") {
      drawImages(item, event);
    } else if (event.type === "file") {
      const line = el("p", "bot file", event.text + " ");
      const link = el("a", null, event.name);
      link.href = event.url;
      link.download = event.name;
      line.appendChild(link);
      item.appendChild(line);
    } else if (event.type === "delete") {
      document.querySelectorAll('.post[data-batch="' + event.batch + '"]').forEach(function (p) {
        p.replaceWith(el("p", "bot note", "(post deleted)"));
      });
    }
    if (live && event.type !== "you") live.remove(); // the answer is here
    item.scrollIntoView({ block: "end" });
  }

  const stream = new EventSource("/chat/events?after=" + (log.dataset.after || "0"));
  stream.onmessage = function (message) { draw(JSON.parse(message.data)); };

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    post("/chat/send", { text: text, request: newRequest() });
  });
})();
