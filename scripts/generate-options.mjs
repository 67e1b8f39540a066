#!/usr/bin/env node
// Generates the option data of curl-sockets from libcurl's own headers (DESIGN.md, principle 8):
//   lib/generated/options.ts     value types of every easy option, info and multi option, plus
//                                compact [name, id, kind] tables for the run-time checks
//   src/generated/constants.inc  X-macro list of the constants the native side exports
//
// Usage: node scripts/generate-options.mjs [HEADER_DIR]
//   HEADER_DIR is an include dir holding curl/curl.h, or the curl/ dir itself. Without it the
//   include dirs come from `curl-config --cflags` or `pkg-config --cflags libcurl`, then the
//   usual Debian locations.
//
// What curl.h cannot say (booleans, enum families, "since" versions, callback signatures) lives in
// scripts/option-annotations.json. Plain Node, no dependencies.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ANNOTATIONS_PATH = join(ROOT, 'scripts', 'option-annotations.json');
const TS_OUT = join(ROOT, 'lib', 'generated', 'options.ts');
const INC_OUT = join(ROOT, 'src', 'generated', 'constants.inc');
const GENERATED_BY = 'scripts/generate-options.mjs';

// ---------------------------------------------------------------------------------------------
// Finding and reading the headers

/** Include dirs named by -I / -isystem in a compiler flag string. */
function includeDirsFromFlags(flags) {
  const dirs = [];
  const tokens = flags.trim().split(/\s+/).filter(Boolean);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if ((token === '-I' || token === '-isystem') && i + 1 < tokens.length) dirs.push(tokens[++i]);
    else if (token.startsWith('-I')) dirs.push(token.slice(2));
  }
  return dirs;
}

/** Output of a command, or '' when it is missing or fails (both tools are optional). */
function commandOutput(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/** The curl/ directory inside an include dir, or the dir itself if it already is one. */
function curlDirIn(dir) {
  if (existsSync(join(dir, 'curl', 'curl.h'))) return join(dir, 'curl');
  if (existsSync(join(dir, 'curl.h'))) return dir;
  return null;
}

function findCurlHeaderDir(cliArg) {
  if (cliArg) {
    const dir = curlDirIn(resolve(cliArg));
    if (!dir) throw new Error(`no curl.h in ${cliArg} or ${join(cliArg, 'curl')}`);
    return dir;
  }
  const candidates = [
    ...includeDirsFromFlags(commandOutput('curl-config', ['--cflags'])),
    ...includeDirsFromFlags(commandOutput('pkg-config', ['--cflags', 'libcurl'])),
    '/usr/include',
    '/usr/include/x86_64-linux-gnu',
  ];
  for (const candidate of candidates) {
    const dir = curlDirIn(candidate);
    if (dir) return dir;
  }
  throw new Error(`curl/curl.h not found (looked in ${candidates.join(', ')}); pass the header dir`);
}

/** Removes comments but keeps string literals, whose text may look like a comment. */
function stripComments(text) {
  return text.replace(/"(?:\\.|[^"\\\n])*"|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (match) =>
    match.startsWith('"') ? match : ' ',
  );
}

/** Comment-free header text with backslash-continued lines joined. */
function readHeader(dir, name, { optional = false } = {}) {
  const path = join(dir, name);
  if (!existsSync(path)) {
    if (optional) return '';
    throw new Error(`missing header ${path}`);
  }
  return stripComments(readFileSync(path, 'utf8')).replace(/\\\r?\n/g, ' ');
}

function readLibcurlVersion(curlver) {
  const match = /#\s*define\s+LIBCURL_VERSION\s+"([^"]+)"/.exec(curlver);
  if (!match) throw new Error('LIBCURL_VERSION not found in curlver.h');
  return match[1];
}

// ---------------------------------------------------------------------------------------------
// Generic C parsing: object-like macros and enum members

/** Map of object-like macro name -> replacement text. Function-like macros are left out. */
function parseDefines(text) {
  const defines = new Map();
  // \b before (?!\() stops the name from backtracking to a shorter prefix of `CURLOPT(na,...)`.
  const re = /^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\b(?!\()([^\n]*)$/gm;
  for (const m of text.matchAll(re)) defines.set(m[1], m[2].trim());
  return defines;
}

/** Drops balanced (...) groups so commas inside CURL_DEPRECATED(v, "msg") do not split members. */
function withoutParenGroups(text) {
  let previous;
  do {
    previous = text;
    text = text.replace(/\([^()]*\)/g, ' ');
  } while (text !== previous);
  return text;
}

/** Every enum in the text: its typedef name (or tag) and member names in order. */
function parseEnums(text) {
  const enums = [];
  for (const m of text.matchAll(/\benum\b\s*(\w*)\s*\{([^{}]*)\}\s*(\w*)/g)) {
    const body = m[2]
      .split('\n')
      .filter((line) => !/^\s*#/.test(line))
      .join('\n');
    const members = [];
    for (const part of withoutParenGroups(body).split(',')) {
      const ident = /^\s*([A-Za-z_]\w*)/.exec(part);
      if (ident) members.push(ident[1]);
    }
    enums.push({ name: m[3] || m[1], members });
  }
  return enums;
}

// ---------------------------------------------------------------------------------------------
// libcurl-specific parsing

/** Resolves `#define PREFIXNAME value` where value is a number or another such define. */
function resolveTypeBases(defines, prefix) {
  const bases = new Map();
  const valueOf = (name, depth = 0) => {
    const raw = defines.get(name);
    if (raw === undefined || depth > 8) return undefined;
    if (/^(0x[0-9a-fA-F]+|\d+)$/.test(raw)) return Number(raw);
    return valueOf(raw, depth + 1);
  };
  for (const name of defines.keys()) {
    if (!name.startsWith(prefix)) continue;
    const value = valueOf(name);
    if (value !== undefined) bases.set(name.slice(prefix.length), value);
  }
  return bases;
}

// CURLOPTTYPE_* token -> OPTION_TABLE kind. VALUES is a LONG that takes constants.
const OPTION_KIND_BY_TYPE = {
  LONG: 'long',
  VALUES: 'long',
  OBJECTPOINT: 'object',
  STRINGPOINT: 'string',
  SLISTPOINT: 'slist',
  CBPOINT: 'cbpoint',
  FUNCTIONPOINT: 'function',
  OFF_T: 'off_t',
  BLOB: 'blob',
};

/**
 * Every `CURLOPT(PREFIXNAME, CURLOPTTYPE_T, N)` and `CURLOPTDEPRECATED(PREFIXNAME, T, N, V, "msg")`.
 * Easy options live in curl.h; multi.h uses the same macro for CURLMOPT_*.
 */
function parseOptionEntries(text, prefix, typeBases) {
  const re = new RegExp(
    String.raw`\bCURLOPT(?:DEPRECATED)?\(\s*${prefix}(\w+)\s*,\s*CURLOPTTYPE_(\w+)\s*,\s*(\d+)` +
      String.raw`\s*(?:,\s*([\d.]+)\s*,\s*"((?:\\.|[^"\\])*)"\s*)?\)`,
    'g',
  );
  const options = [];
  for (const m of text.matchAll(re)) {
    const [, name, type, number, deprecatedSince, deprecatedMessage] = m;
    const kind = OPTION_KIND_BY_TYPE[type];
    const base = typeBases.get(type);
    if (!kind || base === undefined) throw new Error(`${prefix}${name}: unknown type CURLOPTTYPE_${type}`);
    options.push({
      name,
      id: base + Number(number),
      kind,
      deprecated: deprecatedSince ? { since: deprecatedSince, message: deprecatedMessage } : undefined,
    });
  }
  if (options.length === 0) throw new Error(`no ${prefix}* entries found: header older than 7.73?`);
  return options;
}

/** CURLINFO_NAME [CURL_DEPRECATED(v, "msg")] = CURLINFO_BASE + N, members of the CURLINFO enum. */
function parseInfoEntries(text, infoBases) {
  const re =
    /\bCURLINFO_(\w+)\s*(?:CURL_DEPRECATED\(\s*([\d.]+)\s*,\s*"((?:\\.|[^"\\])*)"\s*\)\s*)?=\s*CURLINFO_(\w+)\s*\+\s*(\d+)/g;
  const infos = [];
  for (const m of text.matchAll(re)) {
    const [, name, deprecatedSince, deprecatedMessage, base, number] = m;
    if (!infoBases.has(base)) throw new Error(`CURLINFO_${name}: unknown base CURLINFO_${base}`);
    infos.push({
      name,
      id: infoBases.get(base) + Number(number),
      // PTR and SLIST share a value; the base named in the header tells which one is meant.
      kind: base.toLowerCase(),
      deprecated: deprecatedSince ? { since: deprecatedSince, message: deprecatedMessage } : undefined,
    });
  }
  if (infos.length === 0) throw new Error('no CURLINFO_* entries found');
  return infos;
}

/**
 * `#define PREFIX_OLD PREFIX_NEW` where NEW is a known entry: an alias sharing NEW's id.
 * Returns the aliases and the names that point at something that is not an entry (obsolete).
 */
function parseAliases(defines, prefix, entries) {
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  const aliases = [];
  const obsolete = [];
  for (const [macro, value] of defines) {
    if (!macro.startsWith(prefix) || !/^[A-Za-z_]\w*$/.test(value)) continue;
    const name = macro.slice(prefix.length);
    if (byName.has(name)) continue;
    if (!value.startsWith(prefix)) continue;
    const target = byName.get(value.slice(prefix.length));
    if (target) aliases.push({ ...target, name, aliasOf: target.name, deprecated: undefined });
    else obsolete.push(name);
  }
  return { aliases, obsolete };
}

// ---------------------------------------------------------------------------------------------
// Constants for the X-macro list

/** Every macro and enum member of the headers: name -> { kind, enumName, position }. */
function collectSymbols(texts) {
  const symbols = new Map();
  const all = texts.join('\n');
  const positionOf = (name) => all.search(new RegExp(String.raw`\b${name}\b`));
  for (const text of texts) {
    for (const name of parseDefines(text).keys()) {
      symbols.set(name, { kind: 'macro', position: positionOf(name) });
    }
    for (const { name: enumName, members } of parseEnums(text)) {
      for (const name of members) {
        if (!symbols.has(name)) symbols.set(name, { kind: 'enum', enumName, position: positionOf(name) });
      }
    }
  }
  return symbols;
}

/** The header names one annotation family stands for, in header order. */
function familyMembers(family, symbols, exclude) {
  let names;
  if (family.prefix) {
    names = [...symbols.keys()].filter((name) => name.startsWith(family.prefix));
  } else if (family.enum) {
    names = [...symbols].filter(([, s]) => s.enumName === family.enum).map(([name]) => name);
  } else {
    names = family.names.filter((name) => {
      if (symbols.has(name)) return true;
      console.warn(`warning: ${name} is not in these headers; left out`);
      return false;
    });
  }
  return names
    .filter((name) => !exclude.test(name))
    .sort((a, b) => symbols.get(a).position - symbols.get(b).position);
}

function parseVersion(text) {
  const [major, minor = 0, patch = 0] = text.split('.').map(Number);
  return { major, minor, patch, num: (major << 16) | (minor << 8) | patch, text };
}

function versionHex(version) {
  return '0x' + version.num.toString(16).padStart(6, '0');
}

/** name -> version, from the annotation's { "7.19.4": [names...] } groups. */
function sinceTable(annotations) {
  const table = new Map();
  for (const [version, names] of Object.entries(annotations.since)) {
    if (version.startsWith('$')) continue;
    for (const name of names) table.set(name, parseVersion(version));
  }
  return table;
}

/**
 * How to guard one constant so the line compiles against every supported header.
 * Present in the minimum version: no guard. Newer: a LIBCURL_VERSION_NUM test, because many
 * constants were enum members in older headers and #ifdef cannot see those. A #define with an
 * unknown version still gets #ifdef, which is right for names that have always been macros.
 */
function guardFor(name, symbol, since, minimum) {
  if (!since) {
    if (symbol.kind === 'enum') {
      throw new Error(`${name} is an enum member with no "since" entry in option-annotations.json`);
    }
    console.warn(`warning: no "since" entry for ${name}; guarded with #ifdef`);
    return `#ifdef ${name}`;
  }
  if (since.num <= minimum.num) return null;
  const versionTest = `LIBCURL_VERSION_NUM >= ${versionHex(since)} /* ${since.text} */`;
  return symbol.kind === 'macro' ? `#if defined(${name}) || ${versionTest}` : `#if ${versionTest}`;
}

/** Families with their resolved members and the comment naming what they are for. */
function resolveConstantFamilies(annotations, symbols) {
  const exclude = new RegExp(annotations.constantExclude.pattern);
  const seen = new Set();
  const families = [];
  for (const family of annotations.constantFamilies) {
    const members = familyMembers(family, symbols, exclude).filter((name) => !seen.has(name));
    members.forEach((name) => seen.add(name));
    const uses = [
      ...(family.options ?? []).map((o) => `CURLOPT_${o}`),
      ...(family.multiOptions ?? []).map((o) => `CURLMOPT_${o}`),
      ...(family.use ? [family.use] : []),
    ];
    families.push({ ...family, members, uses });
  }
  return families;
}

function renderConstantsInc({ version, families, symbols, since, minimum }) {
  const lines = [
    `/* generated by ${GENERATED_BY} from curl.h ${version}, do not edit */`,
    '/*',
    ' * X-macro list of the libcurl constants the addon exports with their real values:',
    ' *   #define CURL_CONSTANT(name, since) ...use #name and (name)...',
    ' *   #include "generated/constants.inc"',
    ' *   #undef CURL_CONSTANT',
    ` * \`since\` is the LIBCURL_VERSION_NUM that introduced the constant (0: ${minimum.text} or older), so`,
    ' * that a build against newer headers can leave it out when an older libcurl runs.',
    ` * Every line compiles against libcurl ${minimum.text} and newer headers: a constant newer than`,
    ` * ${minimum.text} is guarded by LIBCURL_VERSION_NUM (enum members cannot be tested with #ifdef, and`,
    ' * several families moved from enum to #define over time).',
    ' * Some values are unsigned long (CURLAUTH_ANY is ~CURLAUTH_DIGEST_IE): convert through (long)',
    ' * so the exported number round-trips to curl_easy_setopt.',
    ' */',
  ];
  for (const family of families) {
    if (family.members.length === 0) continue;
    lines.push('', `/* ${family.uses.join(', ')} */`);
    for (const name of family.members) {
      const guard = guardFor(name, symbols.get(name), since.get(name), minimum);
      if (guard) lines.push(guard);
      const introduced = since.get(name);
      lines.push(`CURL_CONSTANT(${name}, ${introduced && introduced.num > minimum.num ? versionHex(introduced) : 0})`);
      if (guard) lines.push('#endif');
    }
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// TypeScript

/** Annotation entries of the form { "$comment": ..., "<field>": value }. */
function annotationField(annotations, key, field) {
  const value = annotations[key]?.[field];
  if (value === undefined) throw new Error(`option-annotations.json: ${key}.${field} missing`);
  return value;
}

/** Warns about annotated names the header does not know (older header), or of the wrong kind. */
function checkAnnotatedNames(label, names, entriesByName, expectedKinds) {
  for (const name of names) {
    const entry = entriesByName.get(name);
    if (!entry) console.warn(`warning: ${label} ${name} is not in this curl.h`);
    else if (expectedKinds && !expectedKinds.includes(entry.kind)) {
      throw new Error(`${label} ${name} is ${entry.kind} in curl.h, expected ${expectedKinds.join('/')}`);
    }
  }
}

/** The TypeScript value type of one easy or multi option (null is added by the caller). */
function optionValueType(entry, ctx) {
  switch (entry.kind) {
    case 'boolean':
      return 'boolean | number';
    case 'long':
      return 'number';
    case 'string':
      return 'string';
    case 'slist':
      return 'string[]';
    case 'off_t':
      return ctx.offT ? 'number | bigint' : 'never';
    case 'blob':
      return 'Buffer';
    case 'cbpoint':
      // The clientp of a supported callback takes any value; any other is refused.
      return ctx.callbackData.includes(entry.canonical) ? 'unknown' : 'never';
    case 'object':
      // multi.h still declares SOCKETDATA/TIMERDATA as OBJECTPOINT: *DATA is the callback's clientp.
      if (ctx.objectTypes[entry.canonical]) return ctx.objectTypes[entry.canonical];
      return ctx.callbackData.includes(entry.canonical) ? 'unknown' : 'never';
    case 'function':
      return ctx.callbacks[entry.canonical] ?? 'never';
    default:
      throw new Error(`unexpected kind ${entry.kind}`);
  }
}

/** JSDoc lines for one interface member: deprecation, alias, constants, why it is refused. */
function optionDocs(entry, valueType, ctx) {
  const docs = [];
  if (entry.aliasOf) docs.push(`alias of ${entry.aliasOf}`);
  const families = ctx.constants.labels.get(entry.canonical);
  if (families) docs.push(`values: ${families.join(', ')} (exported constants)`);
  const owned = ctx.owned[entry.canonical];
  if (owned) docs.push(`owned by the binding, setopt refuses it: ${owned}`);
  else if (valueType === 'never' && entry.kind === 'function') docs.push('callback not supported by the binding yet');
  else if (valueType === 'never' && (entry.kind === 'cbpoint' || entry.canonical.endsWith('DATA'))) {
    docs.push('data of a callback the binding does not support yet');
  } else if (valueType === 'never' && entry.kind === 'off_t') docs.push('not supported by the binding (libcurl has ignored it since 7.62)');
  else if (valueType === 'never') docs.push('raw C pointer, not settable from JavaScript');
  if (entry.deprecated) docs.push(`@deprecated since ${entry.deprecated.since}: ${entry.deprecated.message}`);
  return docs;
}

function renderDocs(docs, indent = '  ') {
  if (docs.length === 0) return [];
  if (docs.length === 1) return [`${indent}/** ${docs[0]} */`];
  return [`${indent}/**`, ...docs.map((d) => `${indent} * ${d}`), `${indent} */`];
}

/** `export interface NAME { KEY: TYPE | null; ... }` for easy or multi options. */
function renderOptionInterface(interfaceName, description, entries, ctx) {
  const lines = ['', ...description.map((d) => `// ${d}`), `export interface ${interfaceName} {`];
  for (const entry of entries) {
    const owned = ctx.owned[entry.canonical] !== undefined;
    const valueType = owned ? 'never' : optionValueType(entry, ctx);
    lines.push(...renderDocs(optionDocs(entry, valueType, ctx)));
    // null restores the default (of a multi option: removes a callback); `unknown` already
    // includes it, and an option setopt refuses takes nothing, not even null.
    const takesNull = valueType !== 'unknown' && valueType !== 'never' && (ctx.nullRestoresDefault || entry.kind === 'function');
    const withNull = takesNull ? `${valueType} | null` : valueType;
    lines.push(`  ${entry.name}: ${withNull};`);
  }
  lines.push('}');
  return lines;
}

const INFO_VALUE_TYPES = {
  string: 'string | null',
  long: 'number',
  double: 'number',
  off_t: 'number',
  socket: 'number',
  slist: 'string[]',
};

function renderInfoInterface(infos) {
  const skipped = infos.filter((info) => !INFO_VALUE_TYPES[info.kind]).map((info) => info.name);
  const lines = [
    '',
    '// curl_easy_getinfo results by name without CURLINFO_. OFF_T values are numbers (exact up to',
    '// 2**53), SOCKET is an fd (-1 when none). Pointer infos are not exposed:',
    `// ${skipped.join(', ')}.`,
    'export interface InfoValueTypes {',
  ];
  for (const info of infos) {
    const type = INFO_VALUE_TYPES[info.kind];
    if (!type) continue;
    const docs = [];
    if (info.aliasOf) docs.push(`alias of ${info.aliasOf}`);
    if (info.deprecated) docs.push(`@deprecated since ${info.deprecated.since}: ${info.deprecated.message}`);
    lines.push(...renderDocs(docs), `  ${info.name}: ${type};`);
  }
  lines.push('}');
  return lines;
}

function renderTable(constName, rowType, rows, idFormat) {
  return [
    '',
    `export const ${constName}: ReadonlyArray<${rowType}> = [`,
    ...rows.map((row) => `  ['${row.name}', ${idFormat(row.id)}, '${row.kind}'],`),
    '];',
  ];
}

function renderOptionsTs(model) {
  const { version, easy, infos, multi, annotations, ctxEasy, ctxMulti, constantNames, obsolete } = model;
  const callbackTypes = Object.entries(annotations.callbackTypes).filter(([k]) => !k.startsWith('$'));
  const lines = [
    `// generated by ${GENERATED_BY} from curl.h ${version}, do not edit`,
    '//',
    '// Value types of every curl_easy_setopt / curl_multi_setopt option and curl_easy_getinfo info',
    '// (names without CURLOPT_ / CURLMOPT_ / CURLINFO_), and [name, id, kind] tables the run-time',
    '// code uses to check values and to tell "known to this header but absent in the running',
    '// libcurl" (CURLE_UNKNOWN_OPTION) from an unknown name (TypeError). Annotations that curl.h',
    '// cannot express come from scripts/option-annotations.json. Regenerate: npm run generate.',
    '',
    "import type { CurlSockaddr } from '../types';",
    "import type { Easy } from '../easy';",
    '',
    '/** The libcurl version whose curl.h this file was generated from. */',
    `export const GENERATED_FROM_LIBCURL = '${version}';`,
    '',
    '/**',
    ' * How a value is passed to curl_easy_setopt: long (number), boolean (a long that also takes',
    ' * true/false), string, slist (string[]), off_t (number | bigint), blob (Buffer), object (raw',
    ' * pointer; *DATA options carry a JS value), function (callback), cbpoint (a *DATA option).',
    ' */',
    "export type OptionKind = 'long' | 'boolean' | 'string' | 'slist' | 'off_t' | 'blob' | 'object' | 'function' | 'cbpoint';",
    '',
    '/** How curl_easy_getinfo returns a value; ptr infos are not exposed. */',
    "export type InfoKind = 'string' | 'long' | 'double' | 'slist' | 'ptr' | 'socket' | 'off_t';",
    '',
    '// Callback signatures the binding supports (DESIGN.md). clientp is the matching *DATA value.',
    ...callbackTypes.map(([name, signature]) => `export type ${name} = ${signature};`),
    ...renderOptionInterface(
      'EasyOptionValueTypes',
      [
        'curl_easy_setopt value types. null restores the default. Aliases share their target\'s id.',
        `Left out: ${obsolete.join(', ')} (aliases of options libcurl no longer has).`,
      ],
      easy,
      ctxEasy,
    ),
    ...renderInfoInterface(infos),
    ...renderOptionInterface(
      'MultiOptionValueTypes',
      ['curl_multi_setopt value types. null removes a callback; numeric options take a number.'],
      multi,
      ctxMulti,
    ),
    '',
    'export type EasyOptionName = keyof EasyOptionValueTypes;',
    'export type InfoName = keyof InfoValueTypes;',
    'export type MultiOptionName = keyof MultiOptionValueTypes;',
    '',
    '/** Options whose value is one of (or a bitmask of) these exported constants. */',
    'export const OPTION_CONSTANTS: Readonly<Partial<Record<EasyOptionName, readonly string[]>>> = {',
    ...[...ctxEasy.constants.names].map(([o, names]) => `  ${o}: [${names.map((n) => `'${n}'`).join(', ')}],`),
    '};',
    'export const MULTI_OPTION_CONSTANTS: Readonly<Partial<Record<MultiOptionName, readonly string[]>>> = {',
    ...[...ctxMulti.constants.names].map(([o, names]) => `  ${o}: [${names.map((n) => `'${n}'`).join(', ')}],`),
    '};',
    '',
    '/** Options the binding sets itself; setopt refuses them. */',
    `export const BINDING_OWNED_OPTIONS: readonly EasyOptionName[] = [${Object.keys(ctxEasy.owned)
      .map((n) => `'${n}'`)
      .join(', ')}];`,
    '',
    '/** Function options the binding supports (every other one is refused for now). */',
    `export const SUPPORTED_CALLBACK_OPTIONS: readonly EasyOptionName[] = [${Object.keys(ctxEasy.callbacks)
      .map((n) => `'${n}'`)
      .join(', ')}];`,
    `export const SUPPORTED_MULTI_CALLBACK_OPTIONS: readonly MultiOptionName[] = [${Object.keys(ctxMulti.callbacks)
      .map((n) => `'${n}'`)
      .join(', ')}];`,
    '',
    '/** Names listed in src/generated/constants.inc; the native side exports those it was built with. */',
    'export const CONSTANT_NAMES = [',
    ...chunk(constantNames, 4).map((group) => `  ${group.map((n) => `'${n}'`).join(', ')},`),
    '] as const;',
    'export type ConstantName = (typeof CONSTANT_NAMES)[number];',
    '',
    '// [name, id, kind] for every option and alias of this curl.h, in header order, aliases last.',
    ...renderTable('OPTION_TABLE', 'readonly [name: string, id: number, kind: OptionKind]', easy, String),
    ...renderTable('INFO_TABLE', 'readonly [name: string, id: number, kind: InfoKind]', infos, hexId),
    ...renderTable('MULTI_OPTION_TABLE', 'readonly [name: string, id: number, kind: OptionKind]', multi, String),
  ];
  return lines.join('\n') + '\n';
}

function hexId(id) {
  return '0x' + id.toString(16);
}

function chunk(items, size) {
  const groups = [];
  for (let i = 0; i < items.length; i += size) groups.push(items.slice(i, i + size));
  return groups;
}

// ---------------------------------------------------------------------------------------------
// Putting it together

/**
 * Entries plus aliases, each knowing its canonical name, with boolean LONGs marked. Booleans are
 * matched by id, so an annotation naming either spelling works (MAIL_RCPT_ALLOWFAILS was the
 * alias MAIL_RCPT_ALLLOWFAILS before 8.2.0).
 */
function withAliasesAndBooleans(entries, aliases, booleanNames) {
  const all = [...entries, ...aliases];
  const booleanIds = new Set(all.filter((e) => booleanNames.includes(e.name)).map((e) => e.id));
  return all.map((entry) => {
    const canonical = entry.aliasOf ?? entry.name;
    const kind = entry.kind === 'long' && booleanIds.has(entry.id) ? 'boolean' : entry.kind;
    return { ...entry, canonical, kind };
  });
}

/** Headers before 8.x keep CURLOPT_OBSOLETE40/72 as placeholder entries: not options. */
function isPlaceholder(entry) {
  return /^OBSOLETE\d+$/.test(entry.name);
}

/** A short name for a family in doc comments: `CURLPROTO_*`, or its explicit names. */
function familyLabel(family) {
  return family.prefix ? `${family.prefix}*` : family.members.join(', ');
}

/**
 * For the options present in this header: option name -> constant names, and option name ->
 * family labels (for the doc comments).
 */
function constantsByOption(families, field, entriesByName) {
  const names = new Map();
  const labels = new Map();
  for (const family of families) {
    for (const option of family[field] ?? []) {
      if (!entriesByName.has(option)) {
        console.warn(`warning: constant family ${familyLabel(family)} names unknown option ${option}`);
        continue;
      }
      if (family.members.length === 0) continue;
      names.set(option, [...(names.get(option) ?? []), ...family.members]);
      labels.set(option, [...(labels.get(option) ?? []), familyLabel(family)]);
    }
  }
  return { names, labels };
}

function main() {
  const dir = findCurlHeaderDir(process.argv[2]);
  const annotations = JSON.parse(readFileSync(ANNOTATIONS_PATH, 'utf8'));
  const version = readLibcurlVersion(readHeader(dir, 'curlver.h'));
  const curlH = readHeader(dir, 'curl.h');
  const multiH = readHeader(dir, 'multi.h');
  // websockets.h (7.86+) holds the CURLOPT_WS_OPTIONS bits; curl.h includes it.
  const websocketsH = readHeader(dir, 'websockets.h', { optional: true });

  const curlDefines = parseDefines(curlH);
  const optionTypeBases = resolveTypeBases(curlDefines, 'CURLOPTTYPE_');
  const infoBases = new Map(
    [...resolveTypeBases(curlDefines, 'CURLINFO_')].filter(([name]) =>
      ['STRING', 'LONG', 'DOUBLE', 'SLIST', 'PTR', 'SOCKET', 'OFF_T'].includes(name),
    ),
  );

  const easyEntries = parseOptionEntries(curlH, 'CURLOPT_', optionTypeBases).filter((e) => !isPlaceholder(e));
  const multiEntries = parseOptionEntries(multiH, 'CURLMOPT_', optionTypeBases);
  const infoEntries = parseInfoEntries(curlH, infoBases);
  const easyAliases = parseAliases(curlDefines, 'CURLOPT_', easyEntries);
  const infoAliases = parseAliases(curlDefines, 'CURLINFO_', infoEntries);

  const booleanNames = annotationField(annotations, 'booleanOptions', 'names');
  const easyByName = new Map(easyEntries.map((e) => [e.name, e]));
  const easyOrAliasByName = new Map([...easyEntries, ...easyAliases.aliases].map((e) => [e.name, e]));
  checkAnnotatedNames('boolean option', booleanNames, easyOrAliasByName, ['long']);

  const easy = withAliasesAndBooleans(easyEntries, easyAliases.aliases, booleanNames);
  const multi = withAliasesAndBooleans(multiEntries, [], []);
  const infoKindOverrides = annotationField(annotations, 'infoKindOverrides', 'kinds');
  const infos = [...infoEntries, ...infoAliases.aliases].map((info) => ({
    ...info,
    kind: infoKindOverrides[info.aliasOf ?? info.name] ?? info.kind,
  }));

  const symbols = collectSymbols([curlH, multiH, websocketsH]);
  const families = resolveConstantFamilies(annotations, symbols);
  const minimum = parseVersion(annotations.minimumLibcurl);
  const since = sinceTable(annotations);
  const multiByName = new Map(multiEntries.map((e) => [e.name, e]));

  const callbackMap = annotationField(annotations, 'easyCallbacks', 'map');
  const multiCallbackMap = annotationField(annotations, 'multiCallbacks', 'map');
  const owned = annotationField(annotations, 'bindingOwnedOptions', 'names');
  checkAnnotatedNames('callback option', Object.keys(callbackMap), easyByName, ['function']);
  checkAnnotatedNames('multi callback option', Object.keys(multiCallbackMap), multiByName, ['function']);
  checkAnnotatedNames('binding-owned option', Object.keys(owned), easyByName);
  checkAnnotatedNames('callback data option', annotationField(annotations, 'easyCallbacks', 'data'), easyByName, ['cbpoint']);
  checkAnnotatedNames('multi callback data option', annotationField(annotations, 'multiCallbacks', 'data'), multiByName, ['object']);

  const ctxEasy = {
    objectTypes: annotationField(annotations, 'objectOptionTypes', 'types'),
    callbacks: callbackMap,
    callbackData: annotationField(annotations, 'easyCallbacks', 'data'),
    offT: true,
    nullRestoresDefault: true,
    owned,
    constants: constantsByOption(families, 'options', easyByName),
  };
  const ctxMulti = {
    objectTypes: {},
    callbacks: multiCallbackMap,
    callbackData: annotationField(annotations, 'multiCallbacks', 'data'),
    offT: false,  // the only OFF_T multi options are the penalty sizes, ignored since 7.62
    nullRestoresDefault: false,
    owned: {},
    constants: constantsByOption(families, 'multiOptions', multiByName),
  };

  const constantNames = families.flatMap((family) => family.members);
  const ts = renderOptionsTs({
    version,
    easy,
    infos,
    multi,
    annotations,
    ctxEasy,
    ctxMulti,
    constantNames,
    obsolete: easyAliases.obsolete,
  });
  const inc = renderConstantsInc({ version, families, symbols, since, minimum });

  mkdirSync(dirname(TS_OUT), { recursive: true });
  mkdirSync(dirname(INC_OUT), { recursive: true });
  writeFileSync(TS_OUT, ts);
  writeFileSync(INC_OUT, inc);
  console.log(
    `curl.h ${version} (${dir}): ${easy.length} easy options (${easyAliases.aliases.length} aliases), ` +
      `${infos.length} infos, ${multi.length} multi options, ${constantNames.length} constants`,
  );
}

main();
