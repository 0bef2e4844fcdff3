/**
 * Does `body` mention `nick`? Case-insensitively, as a whole word: the nick must not be part of a
 * longer word ("al" is not mentioned by "alice"), where a word character is a letter, mark, number
 * or underscore (Unicode). Conversations and Dino highlight a nick the same way. Nick and body are
 * compared after NFC normalisation; an empty nick is never mentioned.
 */
export function mentions(body: string, nick: string): boolean {
  const n = nick.normalize("NFC").toLowerCase();
  if (n === "") return false;
  const b = body.normalize("NFC").toLowerCase();
  for (let at = b.indexOf(n); at !== -1; at = b.indexOf(n, at + 1)) {
    if (!isWordChar(b, at - 1, true) && !isWordChar(b, at + n.length, false)) return true;
  }
  return false;
}

const WORD = /[\p{L}\p{M}\p{N}_]/u;

/** Is the character just before (`before`) or at `i` a word character? Surrogate pairs are read whole. */
function isWordChar(s: string, i: number, before: boolean): boolean {
  if (i < 0 || i >= s.length) return false;
  let ch = s[i]!;
  const code = s.charCodeAt(i);
  if (before && code >= 0xdc00 && code <= 0xdfff && i > 0) ch = s.slice(i - 1, i + 1);
  else if (!before && code >= 0xd800 && code <= 0xdbff) ch = s.slice(i, i + 2);
  return WORD.test(ch);
}
