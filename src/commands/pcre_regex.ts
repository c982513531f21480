/**
 * A currentOp filter's regular expression, judged as mongod judges it, or not at all.
 *
 * mongod matches `$regex` with PCRE2 in UTF mode, with the options i, m, s, x and the
 * no-op u (src/mongo/util/pcre_util.cpp, flagsToOptions; any other option fails the
 * command). JavaScript's RegExp is a different dialect: some PCRE patterns do not compile
 * at all (`(?i)HOT`, `a++`, `(?P<n>x)`), and some compile to something else (`\A` is a
 * literal A, `\v` a vertical tab, `$` does not match before a final newline). So a pattern
 * is read here token by token and rewritten for a `u`-flagged RegExp (code points, as PCRE's
 * UTF mode) only from constructs that mean the same in both; anything else, inline flags,
 * possessive quantifiers, `\A \Z \z \G \K \Q \h \R \p`, named or atomic groups, back-
 * references, POSIX classes, verbs, throws UnsupportedFilter, and the backup is not listed
 * for that filter. Where the two differ only on some values, the value is refused, not the
 * pattern: `.`, `^` and `$` on one with a line break other than PCRE's one newline (LF), `\s`
 * on one with a Unicode space JavaScript counts and PCRE does not, and any non-ASCII value
 * under `i` (case folding beyond ASCII differs at the edges: ſ, K).
 */
import { UnsupportedFilter } from './unsupported_filter.js';

/** What `\s` matches in JavaScript and not in PCRE without UCP (ECMA-262 WhiteSpace and LineTerminator beyond ASCII). */
const JS_ONLY_SPACES = /[\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;
/** Line breaks: PCRE's default newline is LF alone; JavaScript's `.`, `^` and `$` also know CR, U+2028 and U+2029. */
const LINE_BREAKS = /[\n\r\u2028\u2029]/;
const NON_ASCII = /[^\x00-\x7f]/;
/** The characters a `u`-mode RegExp lets be escaped outside a class (ECMA-262 SyntaxCharacter and /). */
const SYNTAX_CHARACTERS = '^$\\.*+?()[]{}|/';
/** Escapes with one meaning in both dialects, outside a class and inside one (\b is a backspace there, in both). */
const SAME_ESCAPES = 'dDwWsSnrtf';
const ASSERTION_ESCAPES = 'bB';

/** A pattern mongod would match with PCRE, as a JavaScript RegExp that matches the same strings. */
export class PcreRegex {
  constructor(
    private readonly regex: RegExp,
    /** The pattern has `.`, `^` or `$`. */
    private readonly lineSensitive: boolean,
    /** The pattern has `\s` or `\S`. */
    private readonly spaceSensitive: boolean,
    private readonly caseless: boolean,
  ) {}

  /** Whether `subject` matches; throws UnsupportedFilter for a value on which the dialects differ. */
  test(subject: string): boolean {
    if (this.lineSensitive && LINE_BREAKS.test(subject)) throw new UnsupportedFilter('a regular expression with . ^ or $ on a value with line breaks');
    if (this.spaceSensitive && JS_ONLY_SPACES.test(subject)) throw new UnsupportedFilter('a regular expression with \\s on a value with Unicode spaces');
    if (this.caseless && NON_ASCII.test(subject)) throw new UnsupportedFilter('a case-insensitive regular expression on a non-ASCII value');
    return this.regex.test(subject);
  }
}

/** `pattern` with PCRE `options` (mongod's letters), or UnsupportedFilter. */
export function pcreRegex(pattern: string, options: string): PcreRegex {
  let flags = '';
  for (const option of options) {
    if (option === 'u') continue;
    if (!'ims'.includes(option)) throw new UnsupportedFilter(`regular expression option '${option}'`);
    if (!flags.includes(option)) flags += option;
  }
  const { source, lineSensitive, spaceSensitive } = translate(pattern);
  let regex: RegExp;
  try {
    regex = new RegExp(source, `${flags}u`);
  } catch (err) {
    throw new UnsupportedFilter(`regular expression /${pattern}/: ${err instanceof Error ? err.message : String(err)}`);
  }
  return new PcreRegex(regex, lineSensitive, spaceSensitive, flags.includes('i'));
}

function unsupported(pattern: string, what: string): never {
  throw new UnsupportedFilter(`regular expression /${pattern}/: ${what} is PCRE's own or differs in JavaScript`);
}

interface Translation {
  source: string;
  lineSensitive: boolean;
  spaceSensitive: boolean;
}

/** The pattern rewritten for a `u`-mode RegExp, from the constructs both dialects read alike. */
function translate(pattern: string): Translation {
  const t: Translation = { source: '', lineSensitive: false, spaceSensitive: false };
  // Whether the last token can take a quantifier: PCRE and JavaScript refuse one after nothing.
  let repeatable = false;
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) unsupported(pattern, 'a trailing backslash');
      if (ASSERTION_ESCAPES.includes(next)) {
        t.source += `\\${next}`;
        repeatable = false;
      } else {
        t.source += escapeOf(pattern, i, false, t);
        repeatable = true;
      }
      i += next === 'x' ? 4 : 2;
    } else if (c === '[') {
      i = characterClass(pattern, i, t);
      repeatable = true;
    } else if (c === '(') {
      const group = /^\((?:\?(?::|=|!|<=|<!))?/.exec(pattern.slice(i))?.[0] as string;
      if (group === '(' && (pattern[i + 1] === '?' || pattern[i + 1] === '*')) unsupported(pattern, `the group ${pattern.slice(i, i + 4)}…`);
      t.source += group;
      i += group.length;
      repeatable = false;
    } else if ('*+?{'.includes(c)) {
      const quantifier = c === '{' ? /^\{\d+(?:,\d*)?\}/.exec(pattern.slice(i))?.[0] : c;
      if (quantifier === undefined) {
        // Not a quantifier: PCRE reads the brace as a literal ({,n} is one only since PCRE2 10.43).
        if (pattern[i + 1] === ',') unsupported(pattern, 'the quantifier {,n}');
        t.source += '\\{';
        i += 1;
        repeatable = true;
        continue;
      }
      if (!repeatable) unsupported(pattern, `a quantifier (${quantifier}) with nothing to repeat`);
      i += quantifier.length;
      t.source += quantifier;
      if (pattern[i] === '+') unsupported(pattern, `the possessive quantifier ${quantifier}+`);
      if (pattern[i] === '?') {
        t.source += '?';
        i += 1;
      }
      repeatable = false;
    } else {
      const char = String.fromCodePoint(pattern.codePointAt(i) as number);
      if (c === '.' || c === '^' || c === '$') t.lineSensitive = true;
      // A lone ] or } is a literal in PCRE and an error in a u-mode RegExp.
      t.source += c === ']' || c === '}' ? `\\${c}` : char;
      repeatable = c !== '^' && c !== '$' && c !== '|';
      i += char.length;
    }
  }
  return t;
}

/** The escape at `pattern[at]` (a backslash), rewritten; inside a class when `inClass`. */
function escapeOf(pattern: string, at: number, inClass: boolean, t: Translation): string {
  const next = pattern[at + 1] as string;
  if (SAME_ESCAPES.includes(next)) {
    if (next === 's' || next === 'S') t.spaceSensitive = true;
    return `\\${next}`;
  }
  if (inClass && next === 'b') return '\\b';
  // \xhh: PCRE takes up to two hex digits, or \x{...}; only exactly two read alike.
  if (next === 'x') {
    if (/^[0-9a-fA-F]{2}$/.test(pattern.slice(at + 2, at + 4))) return pattern.slice(at, at + 4);
    unsupported(pattern, `the escape ${pattern.slice(at, at + 4)}`);
  }
  // Any other ASCII punctuation is itself, in PCRE; a u-mode RegExp takes only some escaped.
  if (/^[!-/:-@[-`{-~ ]$/.test(next)) {
    return SYNTAX_CHARACTERS.includes(next) || (inClass && next === '-') ? `\\${next}` : next;
  }
  return unsupported(pattern, `the escape \\${next}`);
}

/** The class opening at `pattern[at]`, appended to `t`; returns the index past its `]`. */
function characterClass(pattern: string, at: number, t: Translation): number {
  let i = at + 1;
  t.source += '[';
  if (pattern[i] === '^') {
    t.source += '^';
    i += 1;
  }
  // A ] first is a literal in PCRE; [] is an empty class in JavaScript.
  if (pattern[i] === ']') {
    t.source += '\\]';
    i += 1;
  }
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === ']') {
      t.source += ']';
      return i + 1;
    }
    if (c === '\\') {
      if (pattern[i + 1] === undefined) break;
      t.source += escapeOf(pattern, i, true, t);
      i += pattern[i + 1] === 'x' ? 4 : 2;
    } else if (c === '[') {
      // [:alpha:], [.x.], [=x=]: POSIX classes in PCRE, literals in JavaScript.
      if (':.='.includes(pattern[i + 1] ?? '')) unsupported(pattern, 'a POSIX class');
      t.source += '\\[';
      i += 1;
    } else {
      const char = String.fromCodePoint(pattern.codePointAt(i) as number);
      t.source += char;
      i += char.length;
    }
  }
  return unsupported(pattern, 'an unterminated class');
}
