// The auditor's page: every verdict computed here, with WebCrypto (docs/audit-format.md).
// The server sends the key, the checkpoint and the proofs; this file checks them:
// Ed25519 signature of the checkpoint (signed note, section 4), RFC 9162 inclusion and
// consistency proofs with SHA-256 (section 1). "Verified in this browser" is shown only
// when the math holds; anything malformed or missing is a failure, never a pass.
"use strict";
(function () {
  var root = document.getElementById("audit");
  if (!root) return;
  var T = root.dataset;
  var encoder = new TextEncoder();
  var subtle = window.crypto && window.crypto.subtle;

  function bad(why) { throw new Error(why); }

  function toB64(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  // Canonical base64 only (section "Conventions"): a lenient decoder reads several strings
  // as one hash, so the re-encoding must give back the very string.
  function fromB64(s) {
    if (typeof s !== "string" || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) bad("base64");
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    if (toB64(out) !== s) bad("base64 not canonical");
    return out;
  }

  function hash32(s) {
    var h = fromB64(s);
    if (h.length !== 32) bad("a hash is 32 bytes");
    return h;
  }

  function concat(parts) {
    var size = 0, at = 0;
    parts.forEach(function (p) { size += p.length; });
    var out = new Uint8Array(size);
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  function same(a, b) {
    if (a.length !== b.length) return false;
    var d = 0;
    for (var i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  async function sha256(bytes) { return new Uint8Array(await subtle.digest("SHA-256", bytes)); }
  function interior(left, right) { return sha256(concat([Uint8Array.of(1), left, right])); }

  function size(n) {
    if (!Number.isSafeInteger(n) || n < 0) bad("size");
    return n;
  }

  // RFC 9162 2.1.3.2
  async function inclusionHolds(leaf, index, treeSize, path, rootHash) {
    var fn = size(index), sn = size(treeSize) - 1, r = leaf;
    if (index >= treeSize) return false;
    for (var i = 0; i < path.length; i++) {
      var p = path[i];
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = await interior(p, r);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await interior(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 && same(r, rootHash);
  }

  // RFC 9162 2.1.4.2 (and the trivial cases coord answers with an empty proof)
  async function consistencyHolds(m, n, proof, first, second) {
    size(m); size(n);
    if (m > n) return false;
    if (m === n) return proof.length === 0 && same(first, second);
    if (m === 0) return proof.length === 0 && same(first, await sha256(new Uint8Array(0)));
    if (proof.length === 0) return false;
    if ((m & (m - 1)) === 0 && m < 2 ** 31) proof = [first].concat(proof);
    var fn = m - 1, sn = n - 1;
    while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    var fr = proof[0], sr = proof[0];
    for (var i = 1; i < proof.length; i++) {
      var c = proof[i];
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        fr = await interior(c, fr);
        sr = await interior(c, sr);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        sr = await interior(sr, c);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return same(fr, first) && same(sr, second) && sn === 0;
  }

  // A verifier key string (4.3): name+hex key id+base64(0x01 || public key).
  async function readKey(vkey) {
    var a = vkey.indexOf("+"), b = vkey.indexOf("+", a + 1);
    if (a <= 0 || b <= a) bad("key string");
    var name = vkey.slice(0, a), hex = vkey.slice(a + 1, b), raw = fromB64(vkey.slice(b + 1));
    if (!/^[0-9a-f]{8}$/.test(hex) || raw.length !== 33 || raw[0] !== 1) bad("key string");
    var pub = raw.slice(1);
    var id = (await sha256(concat([encoder.encode(name + "\n"), Uint8Array.of(1), pub]))).slice(0, 4);
    if (Array.from(id).map(function (x) { return x.toString(16).padStart(2, "0"); }).join("") !== hex) bad("key id");
    var key = await subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    return { name: name, id: id, key: key };
  }

  // A checkpoint (section 3) in a signed note (4.4): only a trusted signature that
  // verifies lets its text be read; any trusted signature that fails rejects the note.
  async function readCheckpoint(note, trusted) {
    var cut = note.lastIndexOf("\n\n");
    if (cut < 0 || !note.endsWith("\n")) bad("note layout");
    var text = note.slice(0, cut + 1);
    var lines = note.slice(cut + 2, -1).split("\n");
    var good = false;
    for (var i = 0; i < lines.length; i++) {
      var m = /^\u2014 (\S+) (\S+)$/.exec(lines[i]);
      if (!m) bad("signature line");
      var raw = fromB64(m[2]);
      if (raw.length < 5) bad("signature line");
      if (m[1] !== trusted.name || !same(raw.slice(0, 4), trusted.id)) continue;
      if (raw.length !== 68) return null;
      if (!(await subtle.verify({ name: "Ed25519" }, trusted.key, raw.slice(4), encoder.encode(text)))) return null;
      good = true;
    }
    if (!good) return null;
    var head = text.split("\n");
    if (head.length < 4 || head[0] !== trusted.name || !/^(0|[1-9][0-9]*)$/.test(head[1])) bad("checkpoint text");
    return { size: size(Number(head[1])), root: hash32(head[2]) };
  }

  function show(id, state, text) {
    var el = document.getElementById(id);
    el.dataset.state = state;
    var label = state === "verified" ? T.verified : state === "failed" ? T.failed : state === "unverifiable" ? T.unverifiable : "";
    el.textContent = (label ? label + ". " : "") + text;
  }

  async function fetchJson(path) {
    var r = await fetch(path, { credentials: "same-origin", redirect: "error", headers: { Accept: "application/json" } });
    if (!r.ok) bad("HTTP " + r.status);
    return r.json();
  }

  var verified = null; // {size, root} of the checkpoint verified on this page
  var trusted = null;

  async function checkKeyAndCheckpoint() {
    if (!subtle) {
      ["audit-key", "audit-checkpoint", "audit-consistency"].forEach(function (id) { show(id, "unverifiable", "WebCrypto"); });
      return;
    }
    var served = await fetchJson("/audit/data/public-key");
    var pinned = window.localStorage.getItem("coord.audit.vkey");
    if (pinned === null) {
      window.localStorage.setItem("coord.audit.vkey", served.vkey);
      pinned = served.vkey;
      show("audit-key", "pinned", T.pinnedNow + " " + served.vkey);
    } else if (pinned !== served.vkey) {
      show("audit-key", "failed", T.keyChanged + " " + pinned + " ≠ " + served.vkey);
    } else {
      show("audit-key", "pinned", T.pinned + " " + pinned);
    }
    try {
      trusted = await readKey(pinned); // always the pinned key, never a changed one
    } catch (e) {
      show("audit-key", "unverifiable", String(e.message || e));
      show("audit-checkpoint", "unverifiable", String(e.message || e));
      return;
    }
    var head = await fetchJson("/audit/data/tree-head");
    document.getElementById("audit-note").textContent = head.checkpoint;
    var cp = null;
    try { cp = await readCheckpoint(head.checkpoint, trusted); } catch (e) { cp = null; }
    if (cp === null) {
      show("audit-checkpoint", "failed", "");
      show("audit-consistency", "failed", "");
      return;
    }
    verified = cp;
    show("audit-checkpoint", "verified", T.checkpointOk + " " + cp.size + ", root " + toB64(cp.root));
    var kept = window.localStorage.getItem("coord.audit.checkpoint");
    if (kept === null) {
      window.localStorage.setItem("coord.audit.checkpoint", JSON.stringify({ size: cp.size, root: toB64(cp.root) }));
      show("audit-consistency", "pinned", T.firstCheckpoint);
      return;
    }
    var old = JSON.parse(kept);
    var proof = await fetchJson("/audit/data/consistency?first=" + encodeURIComponent(old.size) + "&second=" + cp.size);
    var holds = proof.first === old.size && proof.second === cp.size &&
      (await consistencyHolds(old.size, cp.size, proof.proof.map(hash32), hash32(old.root), cp.root));
    if (!holds) {
      show("audit-consistency", "failed", old.size + " → " + cp.size);
      return;
    }
    window.localStorage.setItem("coord.audit.checkpoint", JSON.stringify({ size: cp.size, root: toB64(cp.root) }));
    show("audit-consistency", "verified", T.consistent + " " + old.size + " → " + cp.size);
  }

  async function checkInclusion(eventId) {
    if (!verified) { show("audit-inclusion", "unverifiable", ""); return; }
    show("audit-inclusion", "pending", T.working);
    var proof = await fetchJson("/audit/data/inclusion?event_id=" + encodeURIComponent(eventId) + "&tree_size=" + verified.size);
    var holds = false;
    try {
      holds = proof.tree_size === verified.size &&
        (await inclusionHolds(hash32(proof.leaf_hash), proof.leaf_index, proof.tree_size, proof.audit_path.map(hash32), verified.root));
    } catch (e) { holds = false; }
    if (holds) {
      show("audit-inclusion", "verified", T.included + " " + proof.leaf_index + " / " + proof.tree_size + " (leaf hash " + proof.leaf_hash + ")");
    } else {
      show("audit-inclusion", "failed", eventId);
    }
  }

  var form = document.getElementById("audit-inclusion-form");
  var field = document.getElementById("event_id");
  var ready = checkKeyAndCheckpoint().catch(function (e) {
    ["audit-key", "audit-checkpoint", "audit-consistency"].forEach(function (id) {
      if (document.getElementById(id).dataset.state === "pending") show(id, "failed", String(e.message || e));
    });
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    ready.then(function () { return checkInclusion(field.value.trim()); })
      .catch(function (e) { show("audit-inclusion", "failed", String(e.message || e)); });
  });
  if (field.value) ready.then(function () { return checkInclusion(field.value.trim()); })
    .catch(function (e) { show("audit-inclusion", "failed", String(e.message || e)); });
})();
