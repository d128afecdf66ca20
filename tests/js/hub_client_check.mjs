#!/usr/bin/env node
// Drives the real @huggingface/hub npm client against a hub (huggingface.co,
// a test stand-in, or the node's own Hub API) and checks that what it gets
// back is what the repository holds.
//
//   node hub_client_check.mjs '<json>'     the check, as JSON text
//   node hub_client_check.mjs check.json   the check, in a file
//   node hub_client_check.mjs -            the check, on standard input
//
// The check:
//   {
//     "hubUrl": "http://127.0.0.1:8080",
//     "repo": "org/name",
//     "type": "model" | "dataset",
//     "revision": "main" | "<tag>" | "<40-hex sha>",  optional: the client's defaults
//     "sha": "<40-hex>",                 optional: the commit the revision must name
//     "accessToken": "hf_...",           optional
//     "cacheDir": "/tmp/...",            snapshotDownload's cache (made if missing)
//     "expect": {"path": "<sha256 hex>" | {"sha256": "<hex>", "size": n}, ...},
//     "missing": ["path", ...],          paths the revision must not have
//     "timeoutMs": 120000                optional: the whole run's limit
//   }
//
// It runs, in order and each whether or not the ones before it passed:
// modelInfo or datasetInfo, listFiles (recursive), fileDownloadInfo and downloadFile of
// every expected and every missing path, and snapshotDownload into cacheDir.
// Standard output gets one JSON object: {"ok", "steps": {name: {"ok",
// "result", "requests", "messages"}}, "failures": [...]}, where "requests" are
// the HTTP requests the client made in that step as they went on the wire
// (redirects included). Each failed check is also a line on standard error.
// Exit status: 0 when every check passed, 1 when one failed, 2 when the
// check itself is malformed.
//
// Only Node built-ins and @huggingface/hub are used, so that what is tested
// is the client's own behaviour and nothing of ours in between.

import { createHash } from "node:crypto";
import diagnosticsChannel from "node:diagnostics_channel";
import { readFile, readdir, lstat, stat } from "node:fs/promises";
import path from "node:path";
import process from "node:process";
import {
  datasetInfo,
  downloadFile,
  fileDownloadInfo,
  listFiles,
  modelInfo,
  snapshotDownload,
} from "@huggingface/hub";

const kDefaultTimeoutMs = 120000;
const kShaPattern = /^[0-9a-f]{40}$/;
const kSha256Pattern = /^[0-9a-f]{64}$/;

const steps = {};
const failures = [];
let currentStep = "setup";

function stepRecord(name) {
  if (!steps[name]) steps[name] = { ok: true, requests: [], messages: [] };
  return steps[name];
}

function fail(check, why) {
  failures.push({ step: currentStep, check, why });
  stepRecord(currentStep).ok = false;
  process.stderr.write(`FAIL ${currentStep}/${check}: ${why}\n`);
}

function check(condition, name, why) {
  if (!condition) fail(name, why());
  return condition;
}

function finish() {
  const ok = failures.length === 0;
  process.stdout.write(JSON.stringify({ ok, steps, failures }, null, 2) + "\n");
  process.exitCode = ok ? 0 : 1;
}

function usageError(why) {
  process.stderr.write(`hub_client_check: ${why}\n`);
  process.exit(2);
}

// The client logs progress with console.debug, which Node writes to standard
// output; keep it in the step's record so standard output stays one JSON text.
for (const level of ["log", "info", "debug", "warn", "error"]) {
  console[level] = (...args) => {
    stepRecord(currentStep).messages.push(`${level}: ${args.map(String).join(" ")}`);
  };
}

// Node's fetch (undici) announces every request it sends, redirects
// included, and every response head: the wire view of what the client asked.
const kResponseHeadersKept = new Set([
  "content-type",
  "content-length",
  "content-range",
  "etag",
  "x-linked-etag",
  "x-linked-size",
  "x-repo-commit",
  "x-error-code",
  "location",
  "link",
]);
const wireRecords = new WeakMap();

// Headers as undici hands them over: a flat [name, value, ...] array (Node
// 20), or "name: value\r\n" lines (older undici).
function headerPairs(flat) {
  const out = {};
  if (Array.isArray(flat)) {
    for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  } else if (typeof flat === "string") {
    for (const line of flat.split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
    }
  }
  return out;
}

diagnosticsChannel.subscribe("undici:request:create", ({ request }) => {
  const headers = headerPairs(request.headers);
  for (const name of Object.keys(headers)) {
    // The token is the caller's; the log only needs to show that one was sent.
    if (name.toLowerCase() === "authorization") headers[name] = "Bearer <token>";
  }
  const record = { method: request.method, url: `${request.origin}${request.path}`, headers };
  wireRecords.set(request, record);
  stepRecord(currentStep).requests.push(record);
});
diagnosticsChannel.subscribe("undici:request:headers", ({ request, response }) => {
  const record = wireRecords.get(request);
  if (!record) return;
  record.status = response.statusCode;
  const kept = {};
  for (const [name, value] of Object.entries(headerPairs(response.headers))) {
    if (kResponseHeadersKept.has(name.toLowerCase())) kept[name.toLowerCase()] = value;
  }
  record.responseHeaders = kept;
});

function describeError(error) {
  const out = { name: error?.name, message: error?.message ?? String(error) };
  for (const key of ["statusCode", "url", "requestId", "data"]) {
    if (error?.[key] !== undefined) out[key] = error[key];
  }
  if (error?.cause) out.cause = String(error.cause?.message ?? error.cause);
  return out;
}

function describe(value) {
  return JSON.stringify(value);
}

// Runs body(file) for every expected and every missing path; a throw from
// the client fails that path's check, not the others'.
async function forEachPath(out, body) {
  for (const file of [...input.expect.keys(), ...input.missing]) {
    try {
      await body(file);
    } catch (error) {
      out[file] = { error: describeError(error) };
      fail("threw", `"${file}": ${out[file].error.name}: ${out[file].error.message}`);
    }
  }
  return out;
}

// Runs one step; a throw from the client fails the step, not the run.
async function runStep(name, body) {
  currentStep = name;
  const record = stepRecord(name);
  try {
    record.result = await body();
  } catch (error) {
    record.error = describeError(error);
    fail("threw", `${record.error.name}: ${record.error.message}`);
  }
}

function sha256Hex(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

async function readCheck() {
  const arg = process.argv[2];
  if (arg === undefined) usageError("usage: hub_client_check.mjs '<json>' | FILE | -");
  let text = arg;
  if (arg === "-") {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    text = Buffer.concat(chunks).toString("utf8");
  } else if (!arg.trimStart().startsWith("{")) {
    text = await readFile(arg, "utf8");
  }
  let input;
  try {
    input = JSON.parse(text);
  } catch (error) {
    usageError(`the check is not JSON: ${error.message}`);
  }
  for (const key of ["hubUrl", "repo", "cacheDir"]) {
    if (typeof input[key] !== "string" || input[key] === "") {
      usageError(`"${key}" must be a non-empty string`);
    }
  }
  if (input.type !== "model" && input.type !== "dataset") {
    usageError('"type" must be "model" or "dataset"');
  }
  if (typeof input.expect !== "object" || input.expect === null || Array.isArray(input.expect)) {
    usageError('"expect" must be an object of path: sha256');
  }
  const expect = new Map();
  for (const [file, value] of Object.entries(input.expect)) {
    const wanted = typeof value === "string" ? { sha256: value } : value;
    if (!kSha256Pattern.test(wanted?.sha256 ?? "")) usageError(`expect["${file}"]: not a sha256`);
    if (wanted.size !== undefined && !Number.isSafeInteger(wanted.size)) {
      usageError(`expect["${file}"].size: not an integer`);
    }
    expect.set(file, wanted);
  }
  const missing = input.missing ?? [];
  if (!Array.isArray(missing) || missing.some((p) => typeof p !== "string")) {
    usageError('"missing" must be an array of paths');
  }
  for (const file of missing) {
    if (expect.has(file)) usageError(`"${file}" is both expected and missing`);
  }
  const timeout = input.timeoutMs;
  if (timeout !== undefined && !(Number.isSafeInteger(timeout) && timeout > 0)) {
    usageError('"timeoutMs" must be a positive integer');
  }
  let sha = input.sha;
  if (sha === undefined && kShaPattern.test(input.revision ?? "")) sha = input.revision;
  return { ...input, expect, missing, sha };
}

const input = await readCheck();
const timeoutMs = input.timeoutMs ?? kDefaultTimeoutMs;
// A client that hangs on an answer it does not expect must still end the run.
setTimeout(() => {
  fail("timeout", `the run took longer than ${timeoutMs} ms`);
  finish();
  process.exit(1);
}, timeoutMs).unref();

const repo = input.type === "dataset" ? { type: "dataset", name: input.repo } : input.repo;
const common = {
  hubUrl: input.hubUrl,
  ...(input.accessToken !== undefined && { accessToken: input.accessToken }),
};
const revisionParam = input.revision !== undefined ? { revision: input.revision } : {};
// The sizes listFiles reported, to hold fileDownloadInfo to when the check gives none.
const listedSizes = new Map();
let infoSha;

await runStep("info", async () => {
  const params = { ...common, ...revisionParam, name: input.repo, additionalFields: ["sha"] };
  const info = input.type === "dataset" ? await datasetInfo(params) : await modelInfo(params);
  check(info.name === input.repo, "name", () => `name ${describe(info.name)}, not "${input.repo}"`);
  check(typeof info.id === "string" && info.id !== "", "id", () => `id ${describe(info.id)}`);
  if (check(kShaPattern.test(info.sha ?? ""), "sha", () => `sha ${describe(info.sha)}`)) {
    infoSha = info.sha;
  }
  if (input.sha !== undefined) {
    check(info.sha === input.sha, "sha", () => `sha ${info.sha}, not ${input.sha}`);
  }
  return { id: info.id, name: info.name, sha: info.sha, private: info.private, gated: info.gated };
});

await runStep("listFiles", async () => {
  const entries = [];
  for await (const entry of listFiles({ ...common, ...revisionParam, repo, recursive: true })) {
    entries.push(entry);
  }
  const files = entries.filter((e) => e.type === "file");
  for (const entry of entries) {
    // snapshotDownload throws on any other type.
    check(entry.type === "file" || entry.type === "directory", "type", () => describe(entry));
  }
  for (const entry of files) {
    listedSizes.set(entry.path, entry.size);
    const wanted = input.expect.get(entry.path);
    if (!check(wanted !== undefined, "extra", () => `"${entry.path}" is listed`)) continue;
    if (wanted.size !== undefined) {
      check(entry.size === wanted.size, "size", () =>
        `"${entry.path}": ${entry.size}, not ${wanted.size}`);
    }
    if (entry.lfs) {
      check(entry.lfs.oid === wanted.sha256, "lfs.oid", () =>
        `"${entry.path}": ${entry.lfs.oid}, not ${wanted.sha256}`);
      check(entry.lfs.size === entry.size, "lfs.size", () => `"${entry.path}": ${entry.lfs.size}`);
    }
  }
  for (const file of input.expect.keys()) {
    check(listedSizes.has(file), "missing", () => `"${file}" is not listed`);
  }
  for (const file of input.missing) {
    check(!listedSizes.has(file), "listed", () => `"${file}" should be missing but is listed`);
  }
  return entries.map(({ type, path: p, size, oid, lfs }) => ({ type, path: p, size, oid, lfs }));
});

await runStep("fileDownloadInfo", () => {
  const out = {};
  return forEachPath(out, async (file) => {
    const info = await fileDownloadInfo({ ...common, ...revisionParam, repo, path: file });
    out[file] = info && { size: info.size, etag: info.etag, url: info.url, xet: !!info.xet };
    if (!input.expect.has(file)) {
      check(info === null, "not null", () => `"${file}" should be missing: ${describe(out[file])}`);
      return;
    }
    if (!check(info !== null, "null", () => `"${file}": null`)) return;
    const size = input.expect.get(file).size ?? listedSizes.get(file);
    check(Number.isSafeInteger(info.size), "size", () => `"${file}": size ${describe(info.size)}`);
    if (size !== undefined) {
      check(info.size === size, "size", () => `"${file}": ${info.size}, not ${size}`);
    }
    check(typeof info.etag === "string" && info.etag !== "", "etag", () => `"${file}": no etag`);
    check(!info.xet, "xet", () => `"${file}": the client took the Xet path`);
  });
});

await runStep("downloadFile", () => {
  const out = {};
  return forEachPath(out, async (file) => {
    const blob = await downloadFile({ ...common, ...revisionParam, repo, path: file });
    if (!input.expect.has(file)) {
      out[file] = null;
      check(blob === null, "not null", () => `"${file}" should be missing but downloads`);
      return;
    }
    if (!check(blob !== null, "null", () => `"${file}": null`)) return;
    const bytes = Buffer.from(await blob.arrayBuffer());
    const wanted = input.expect.get(file);
    out[file] = { size: bytes.length, sha256: sha256Hex(bytes) };
    check(out[file].sha256 === wanted.sha256, "sha256", () =>
      `"${file}": ${out[file].sha256}, not ${wanted.sha256}`);
    if (wanted.size !== undefined) {
      check(bytes.length === wanted.size, "size", () => `"${file}": ${bytes.length} bytes`);
    }
  });
});

// Every regular file under dir (symlinks followed, as a user's reads do), by
// path relative to root.
async function walkFiles(root, dir, out) {
  for (const name of await readdir(dir)) {
    const full = path.join(dir, name);
    const target = await stat(full);
    if (target.isDirectory()) {
      await walkFiles(root, full, out);
    } else {
      out.set(path.relative(root, full), { full, symlink: (await lstat(full)).isSymbolicLink() });
    }
  }
  return out;
}

await runStep("snapshotDownload", async () => {
  const snapshot = await snapshotDownload({
    ...common,
    ...revisionParam,
    repo,
    cacheDir: input.cacheDir,
  });
  if (infoSha !== undefined) {
    check(path.basename(snapshot) === infoSha, "folder", () =>
      `${snapshot} is not named ${infoSha}`);
  }
  const revision = input.revision ?? "main";
  if (!kShaPattern.test(revision) && infoSha !== undefined) {
    const ref = path.join(path.dirname(path.dirname(snapshot)), "refs", revision);
    const text = await readFile(ref, "utf8").catch((error) => `(${error.code})`);
    check(text === infoSha, "ref", () => `${ref} holds ${describe(text)}, not ${infoSha}`);
  }
  const found = await walkFiles(snapshot, snapshot, new Map());
  const files = {};
  for (const [file, { full, symlink }] of found) {
    const bytes = await readFile(full);
    files[file] = { size: bytes.length, sha256: sha256Hex(bytes), symlink };
    const wanted = input.expect.get(file);
    if (!check(wanted !== undefined, "extra", () => `"${file}" is in the snapshot`)) continue;
    check(files[file].sha256 === wanted.sha256, "sha256", () =>
      `"${file}": ${files[file].sha256}, not ${wanted.sha256}`);
  }
  for (const file of input.expect.keys()) {
    check(found.has(file), "missing", () => `"${file}" is not in the snapshot`);
  }
  return { snapshot, files };
});

currentStep = "done";
finish();
