/**
 * The line format of the Kafka sink's write-ahead log: the Kafka message as it will be sent, so that replay needs
 * no JSON parsing.
 *
 *   <key as a JSON string> TAB <value: the CloudEvent JSON> LF
 *
 * Neither part can hold a raw tab or newline (JSON escapes control characters), so the first tab splits them and
 * the newline ends the line. Decoding returns views into the line's buffer: the message sent is the very bytes
 * written, and a key without escapes is used as is (a request id usually is).
 */
import { PREDICTION_HEADERS } from './cloud-event.ts';
import type { KafkaMessage } from './kafka-producer.ts';

const TAB = 0x09;
const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The line (newline included) for a message with this key and CloudEvent value. */
export function walLine(key: string, value: string): Buffer {
  return walLineOf(key, value, '', '');
}

/**
 * The line for a message whose value is `head + data + tail`, each part encoded straight into the line's buffer:
 * joining them first made a flat copy of the whole value, ~1.2 KB per S1 record, only to encode it.
 */
export function walLineOf(key: string, head: string, data: string, tail: string): Buffer {
  const k = JSON.stringify(key);
  const size = Buffer.byteLength(k) + 1 + Buffer.byteLength(head) + Buffer.byteLength(data) + Buffer.byteLength(tail) + 1;
  const line = Buffer.allocUnsafe(size);
  let at = line.write(k, 0);
  line[at++] = TAB;
  at += line.write(head, at);
  at += line.write(data, at);
  at += line.write(tail, at);
  line[at] = NEWLINE;
  return line;
}

/**
 * The Kafka message of the line in `buf[start, end)` (without its newline), or undefined when it is not in this
 * format (a torn or foreign line). Key and value are views into `buf`.
 */
export function messageOfLine(buf: Buffer, start: number, end: number): KafkaMessage | undefined {
  if (buf[start] !== QUOTE) return undefined;
  const tab = buf.indexOf(TAB, start);
  if (tab < 0 || tab >= end || tab - start < 2 || buf[tab - 1] !== QUOTE || buf[tab + 1] !== 0x7b /* { */) return undefined;
  let key: Buffer | string = buf.subarray(start + 1, tab - 1);
  if (key.includes(BACKSLASH)) {
    try {
      key = JSON.parse(buf.toString('utf8', start, tab)) as string;
    } catch {
      return undefined;
    }
  }
  return { key, value: buf.subarray(tab + 1, end), headers: PREDICTION_HEADERS };
}

/**
 * The messages of the lines in `buf`, one after another from offset 0, the i-th ending (newline included) at
 * `ends[i]`; views into `buf`. Throws on a line not in this format: callers pass lines the sink wrote itself.
 */
export function messagesOfPackedLines(buf: Buffer, ends: Uint32Array): KafkaMessage[] {
  const messages: KafkaMessage[] = new Array(ends.length);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    messages[i] = sinkMessage(buf, start, ends[i]! - 1, i);
    start = ends[i]!;
  }
  return messages;
}

/** The messages of whole lines (each ends with its newline); views into them. Throws like `messagesOfPackedLines`. */
export function messagesOfLines(lines: readonly Buffer[]): KafkaMessage[] {
  return lines.map((line, i) => sinkMessage(line, 0, line.length - 1, i));
}

function sinkMessage(buf: Buffer, start: number, end: number, i: number): KafkaMessage {
  const m = messageOfLine(buf, start, end);
  if (m === undefined) throw new Error(`log line ${i} of a batch is not a Kafka message line`);
  return m;
}
