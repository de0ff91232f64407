// The text prompt's token ids, from the export's tokenizer.json (Hugging Face `tokenizers` format), padded to a fixed
// length as Sam3Processor does (padding="max_length", truncation=True). Supports what SAM3 checkpoints ship: CLIP's
// byte-level BPE (NFC, whitespace collapse, lowercase; a regex split; BPE with "</w>"; RobertaProcessing) and a
// word-level vocabulary (litetext's tiny test checkpoints), with the usual normalizers, pre-tokenizers and
// post-processors around them.

export class TokenizerError extends Error {}

export class Tokenizer {
  /** `json`: the parsed tokenizer.json; `config`: tokenizer_config.json (for the pad token), or {}. */
  constructor(json, config = {}) {
    this.json = json;
    this.normalize = makeNormalizer(json.normalizer);
    this.preTokenize = makePreTokenizer(json.pre_tokenizer);
    this.model = makeModel(json.model);
    this.post = makePostProcessor(json.post_processor);
    this.added = (json.added_tokens || []).map((token) => ({ content: token.content, id: token.id }));
    this.addedIds = new Map(this.added.map((token) => [token.content, token.id]));
    const pad = tokenContent(config.pad_token) ?? json.padding?.pad_token;
    this.padId = pad === undefined ? (json.padding?.pad_id ?? 0) : this.idOf(pad);
  }

  idOf(token) {
    const id = this.addedIds.get(token) ?? this.model.vocab.get(token);
    if (id === undefined) throw new TokenizerError(`the tokenizer has no token ${JSON.stringify(token)}`);
    return id;
  }

  /** Token ids of one text, with the post-processor's special tokens, at most `maxLength` of them. */
  encode(text, maxLength = Infinity) {
    const ids = [];
    for (const piece of this.splitAdded(text)) {
      if (piece.id !== undefined) {
        ids.push(piece.id);
        continue;
      }
      for (const word of this.preTokenize(this.normalize(piece.text))) {
        if (word) ids.push(...this.model.tokenize(word));
      }
    }
    const room = Math.max(0, maxLength - this.post.added);
    return this.post.apply(ids.length > room ? ids.slice(0, room) : ids);
  }

  /** {inputIds, attentionMask} (BigInt64Array, prompts × length), right-padded to `length`, as Sam3Processor. */
  encodeBatch(texts, length) {
    const inputIds = new BigInt64Array(texts.length * length).fill(BigInt(this.padId));
    const attentionMask = new BigInt64Array(texts.length * length);
    const truncated = [];
    texts.forEach((text, row) => {
      const full = this.encode(text);
      const ids = full.length > length ? this.encode(text, length) : full;
      if (full.length > length) truncated.push(text);
      ids.forEach((id, column) => {
        inputIds[row * length + column] = BigInt(id);
        attentionMask[row * length + column] = 1n;
      });
    });
    return { inputIds, attentionMask, truncated };
  }

  splitAdded(text) {
    if (!this.added.length) return [{ text }];
    const contents = [...this.added].map((token) => token.content).sort((a, b) => b.length - a.length);
    const pattern = new RegExp(contents.map(escapeRegExp).join("|"), "g");
    const pieces = [];
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (match.index > last) pieces.push({ text: text.slice(last, match.index) });
      pieces.push({ id: this.addedIds.get(match[0]) });
      last = match.index + match[0].length;
    }
    if (last < text.length) pieces.push({ text: text.slice(last) });
    return pieces;
  }
}

function tokenContent(token) {
  if (token === undefined || token === null) return undefined;
  return typeof token === "string" ? token : token.content;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Rust's regex syntax (what tokenizers uses) read by JavaScript's, with the Unicode flag.
function toRegExp(pattern, flags = "gu") {
  if (pattern.String !== undefined) return new RegExp(escapeRegExp(pattern.String), flags);
  return new RegExp(pattern.Regex.replace(/\\p\{(L|N|M|P|S|Z)\}/g, "\\p{$1}"), flags);
}

// Normalizers ----------------------------------------------------------------------------------------------------

function makeNormalizer(spec) {
  if (!spec) return (text) => text;
  switch (spec.type) {
    case "Sequence": {
      const steps = spec.normalizers.map(makeNormalizer);
      return (text) => steps.reduce((value, step) => step(value), text);
    }
    case "Lowercase":
      return (text) => text.toLowerCase();
    case "NFC": case "NFD": case "NFKC": case "NFKD":
      return (text) => text.normalize(spec.type);
    case "Strip":
      return (text) => {
        let value = text;
        if (spec.strip_left !== false) value = value.replace(/^\s+/u, "");
        if (spec.strip_right !== false) value = value.replace(/\s+$/u, "");
        return value;
      };
    case "Replace": {
      const pattern = toRegExp(spec.pattern);
      return (text) => text.replace(pattern, spec.content);
    }
    case "StripAccents":
      return (text) => text.normalize("NFD").replace(/\p{Mn}/gu, "");
    case "BertNormalizer":
      return (text) => {
        let value = spec.clean_text === false ? text : text.replace(/[\p{Cc}\p{Cf}]/gu, "").replace(/\s/gu, " ");
        if (spec.handle_chinese_chars !== false) value = value.replace(/(\p{Script=Han})/gu, " $1 ");
        if (spec.lowercase !== false) value = value.toLowerCase();
        if (spec.strip_accents ?? spec.lowercase !== false) value = value.normalize("NFD").replace(/\p{Mn}/gu, "");
        return value;
      };
    default:
      throw new TokenizerError(`tokenizer.json uses the normalizer ${spec.type}, which the browser page does not support`);
  }
}

// Pre-tokenizers -------------------------------------------------------------------------------------------------

const BYTE_TO_UNICODE = (() => {
  const bytes = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const chars = bytes.slice();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + extra++);
    }
  }
  const table = new Array(256);
  bytes.forEach((b, i) => { table[b] = String.fromCodePoint(chars[i]); });
  return table;
})();
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const encoder = new TextEncoder();

function splitByPattern(text, pattern, behavior, invert) {
  const pieces = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match[0] === "") continue;
    if (match.index > last) pieces.push({ text: text.slice(last, match.index), delimiter: invert });
    pieces.push({ text: match[0], delimiter: !invert });
    last = match.index + match[0].length;
  }
  if (last < text.length) pieces.push({ text: text.slice(last), delimiter: invert });
  const out = [];
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    if (!piece.delimiter) out.push(piece.text);
    else if (behavior === "Removed") continue;
    else if (behavior === "Isolated") out.push(piece.text);
    else if (behavior === "MergedWithPrevious" && out.length) out[out.length - 1] += piece.text;
    else if (behavior === "MergedWithNext" && i + 1 < pieces.length) pieces[i + 1].text = piece.text + pieces[i + 1].text;
    else if (behavior === "Contiguous" && i > 0 && pieces[i - 1].delimiter) out[out.length - 1] += piece.text;
    else out.push(piece.text);
  }
  return out;
}

function makePreTokenizer(spec) {
  if (!spec) return (text) => [text];
  switch (spec.type) {
    case "Sequence": {
      const steps = spec.pretokenizers.map(makePreTokenizer);
      return (text) => steps.reduce((words, step) => words.flatMap(step), [text]);
    }
    case "Whitespace":
      return (text) => text.match(/[\p{L}\p{N}\p{M}\p{Pc}]+|[^\p{L}\p{N}\p{M}\p{Pc}\s]+/gu) || [];
    case "WhitespaceSplit":
      return (text) => text.split(/\s+/u).filter(Boolean);
    case "Split": {
      const pattern = toRegExp(spec.pattern);
      return (text) => splitByPattern(text, pattern, spec.behavior, Boolean(spec.invert));
    }
    case "Punctuation":
      return (text) => splitByPattern(text, /[\p{P}]/gu, spec.behavior || "Isolated", false);
    case "ByteLevel":
      return (text) => {
        let value = text;
        if (spec.add_prefix_space && !value.startsWith(" ")) value = " " + value;
        const words = spec.use_regex === false ? [value] : (value.match(GPT2_SPLIT) || []);
        return words.map((word) => Array.from(encoder.encode(word), (b) => BYTE_TO_UNICODE[b]).join(""));
      };
    default:
      throw new TokenizerError(`tokenizer.json uses the pre-tokenizer ${spec.type}, which the browser page does not support`);
  }
}

// Models ---------------------------------------------------------------------------------------------------------

function makeModel(spec) {
  const vocab = new Map(Object.entries(spec.vocab || {}));
  const unk = spec.unk_token;
  const lookup = (token, out) => {
    const id = vocab.get(token);
    if (id !== undefined) out.push(id);
    else if (unk !== undefined && unk !== null && vocab.has(unk)) out.push(vocab.get(unk));
  };
  if (spec.type === "WordLevel") {
    return { vocab, tokenize: (word) => { const out = []; lookup(word, out); return out; } };
  }
  if (spec.type === "BPE") {
    const ranks = new Map();
    (spec.merges || []).forEach((merge, rank) => {
      const pair = Array.isArray(merge) ? merge : merge.split(" ");
      ranks.set(`${pair[0]} ${pair[1]}`, rank);
    });
    const suffix = spec.end_of_word_suffix || "";
    const prefix = spec.continuing_subword_prefix || "";
    const cache = new Map();
    const tokenize = (word) => {
      if (cache.has(word)) return cache.get(word);
      const chars = Array.from(word);
      let parts = chars.map((c, i) => (i > 0 ? prefix : "") + c + (i === chars.length - 1 ? suffix : ""));
      while (parts.length > 1) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i < parts.length - 1; i++) {
          const rank = ranks.get(`${parts[i]} ${parts[i + 1]}`);
          if (rank !== undefined && rank < bestRank) { bestRank = rank; best = i; }
        }
        if (best < 0) break;
        parts = [...parts.slice(0, best), parts[best] + stripPrefix(parts[best + 1], prefix), ...parts.slice(best + 2)];
      }
      const out = [];
      for (const part of parts) lookup(part, out);
      cache.set(word, out);
      return out;
    };
    return { vocab, tokenize };
  }
  throw new TokenizerError(`tokenizer.json has a ${spec.type} model; the browser page reads BPE and WordLevel`);
}

function stripPrefix(text, prefix) {
  return prefix && text.startsWith(prefix) ? text.slice(prefix.length) : text;
}

// Post-processors ------------------------------------------------------------------------------------------------

function makePostProcessor(spec) {
  if (!spec) return { added: 0, apply: (ids) => ids };
  switch (spec.type) {
    case "TemplateProcessing": {
      const special = (id) => spec.special_tokens[id].ids;
      const added = spec.single.reduce((n, item) => n + (item.SpecialToken ? special(item.SpecialToken.id).length : 0), 0);
      return {
        added,
        apply: (ids) => spec.single.flatMap((item) => (item.SpecialToken ? special(item.SpecialToken.id) : ids)),
      };
    }
    case "RobertaProcessing": case "BertProcessing":
      return { added: 2, apply: (ids) => [spec.cls[1], ...ids, spec.sep[1]] };
    case "ByteLevel":
      return { added: 0, apply: (ids) => ids };
    case "Sequence": {
      const steps = spec.processors.map(makePostProcessor);
      return {
        added: steps.reduce((n, step) => n + step.added, 0),
        apply: (ids) => steps.reduce((value, step) => step.apply(value), ids),
      };
    }
    default:
      throw new TokenizerError(`tokenizer.json uses the post-processor ${spec.type}, which the browser page does not support`);
  }
}
