/**
 * A reader for protobuf's wire format (protobuf.dev/programming-guides/encoding) over a
 * RandomAccessSource, for recognisers of protobuf files (ONNX). It walks messages field by
 * field in file coordinates: length-delimited fields it is not asked to open are skipped
 * without being read, so a file's tensor payloads cost nothing, and the bytes it does read
 * (tags, numbers, strings, nested messages) count against a budget (BudgetedWindow).
 *
 * Every length is checked against the message that holds it: a field that runs past its
 * message is E_CORRUPT, past the end of the file E_TRUNCATED. Groups (wire types 3 and 4)
 * and wire types 6 and 7 are E_CORRUPT: no message read here uses them.
 */
import { check } from "../common/errors.ts";
import type { RandomAccessSource } from "../common/source.ts";
import { BudgetedWindow } from "./window.ts";

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** One field of a message. */
export interface ProtoField {
  /** The field number (1 .. 2^29 - 1). */
  number: number;
  wire: number;
  /**
   * WIRE_VARINT: the value, exact up to 2^53 (larger values, negative int64s among them,
   * come out as numbers over Number.MAX_SAFE_INTEGER). Otherwise 0.
   */
  value: number;
  /** Where the field's payload starts in the file (WIRE_LEN: after its length). */
  start: number;
  /** The payload's length in bytes (WIRE_LEN: the declared length; I64 8, I32 4, VARINT 0). */
  length: number;
}

export class ProtoReader {
  readonly source: RandomAccessSource;
  readonly what: string;
  private readonly w: BudgetedWindow;

  constructor(source: RandomAccessSource, budget: number, what: string) {
    this.source = source;
    this.what = what;
    this.w = new BudgetedWindow(source, budget, what);
  }

  /** A varint at `pos` that must end before `end`: its value and the position after it. */
  async varint(pos: number, end: number): Promise<{ value: number; next: number }> {
    const avail = Math.min(10, end - pos);
    check(avail > 0, "E_CORRUPT", `${this.what}: a varint runs past the end of its message`);
    const { buf, at } = await this.w.window(pos, avail, "varint");
    return this.decodeVarint(buf, at, pos, avail);
  }

  /**
   * varint() without a promise when the window already holds its bytes (most varints of a
   * message: the window is 64 KiB); undefined otherwise, and then varint() reads.
   */
  heldVarint(pos: number, end: number): { value: number; next: number } | undefined {
    const avail = Math.min(10, end - pos);
    if (avail <= 0) return undefined;
    const at = this.w.holds(pos, avail);
    return at < 0 ? undefined : this.decodeVarint(this.w.held, at, pos, avail);
  }

  private decodeVarint(buf: Buffer, at: number, pos: number, avail: number): { value: number; next: number } {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < avail; i++) {
      const b = buf[at + i];
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) {
        this.w.spend(i + 1);
        return { value, next: pos + i + 1 };
      }
    }
    check(avail === 10, "E_CORRUPT", `${this.what}: a varint runs past the end of its message`);
    check(false, "E_CORRUPT", `${this.what}: a varint longer than 10 bytes`);
  }

  /**
   * The field at `pos` of the message that ends at `end`, and the position after it.
   * Length-delimited payloads are not read. The field is checked against its message:
   * past it E_CORRUPT, past the end of the file E_TRUNCATED.
   */
  async field(pos: number, end: number): Promise<{ field: ProtoField; next: number }> {
    const tag = this.heldVarint(pos, end) ?? (await this.varint(pos, end));
    const { number, wire } = this.tagOf(tag);
    const value =
      wire === WIRE_VARINT || wire === WIRE_LEN
        ? (this.heldVarint(tag.next, end) ?? (await this.varint(tag.next, end)))
        : undefined;
    return this.fieldOf(number, wire, tag.next, value, end);
  }

  /**
   * field() without a promise, when the window already holds the 20 bytes from `pos` (or
   * the rest of the message, if shorter): a tag and a value are at most 10 bytes each.
   * Undefined otherwise, with nothing read or counted; then field() reads.
   */
  heldField(pos: number, end: number): { field: ProtoField; next: number } | undefined {
    if (pos >= end || this.w.holds(pos, Math.min(20, end - pos)) < 0) return undefined;
    const tag = this.heldVarint(pos, end) as { value: number; next: number };
    const { number, wire } = this.tagOf(tag);
    let value: { value: number; next: number } | undefined;
    if (wire === WIRE_VARINT || wire === WIRE_LEN) {
      value = this.heldVarint(tag.next, end);
      // Only a message that ends right after the tag leaves no byte for the value.
      if (value === undefined)
        check(false, "E_CORRUPT", `${this.what}: a varint runs past the end of its message`);
    }
    return this.fieldOf(number, wire, tag.next, value, end);
  }

  /** A tag's field number (checked) and wire type. */
  private tagOf(tag: { value: number; next: number }): { number: number; wire: number } {
    const number = Math.floor(tag.value / 8);
    if (!(number >= 1 && number < 2 ** 29))
      check(false, "E_CORRUPT", `${this.what}: field number ${number} at offset ${tag.next}`);
    return { number, wire: tag.value % 8 };
  }

  /** The field whose payload starts at `pos`; `value` is the decoded varint of VARINT and LEN fields. */
  private fieldOf(
    number: number,
    wire: number,
    pos: number,
    value: { value: number; next: number } | undefined,
    end: number,
  ): { field: ProtoField; next: number } {
    switch (wire) {
      case WIRE_VARINT: {
        const v = value as { value: number; next: number };
        return { field: { number, wire, value: v.value, start: pos, length: 0 }, next: v.next };
      }
      case WIRE_I64:
      case WIRE_I32: {
        const length = wire === WIRE_I64 ? 8 : 4;
        if (!(pos + length <= end))
          check(false, "E_CORRUPT", `${this.what}: field ${number} runs past its message`);
        return { field: { number, wire, value: 0, start: pos, length }, next: pos + length };
      }
      case WIRE_LEN: {
        const v = value as { value: number; next: number };
        if (!(v.next + v.value <= end)) {
          const past = v.next + v.value > this.source.size;
          check(
            false,
            past ? "E_TRUNCATED" : "E_CORRUPT",
            `${this.what}: field ${number} (${v.value} bytes at ${v.next}) runs past ${
              past ? "the end of the file" : "its message"
            }`,
          );
        }
        return { field: { number, wire, value: 0, start: v.next, length: v.value }, next: v.next + v.value };
      }
      default:
        check(false, "E_CORRUPT", `${this.what}: field ${number} has wire type ${wire}`);
    }
  }

  /**
   * The fields of the message in [start, end), in file order, each read as the loop
   * reaches it: heldField, else field(). The generator costs a promise per field, so a
   * message of many fields (a graph, a node) is walked as `for (let pos = start; pos <
   * end; )` with those two instead; this is for messages of a few (a model's own fields).
   */
  async *fields(start: number, end: number): AsyncGenerator<ProtoField> {
    this.checkMessage(start, end);
    for (let pos = start; pos < end; ) {
      const { field, next } = this.heldField(pos, end) ?? (await this.field(pos, end));
      pos = next;
      yield field;
    }
  }

  /** A message [start, end) must lie inside the file (E_TRUNCATED). */
  checkMessage(start: number, end: number): void {
    if (!(end <= this.source.size))
      check(
        false,
        "E_TRUNCATED",
        `${this.what}: a message (${end - start} bytes at ${start}) runs past the end of the file`,
      );
  }

  /** The bytes of a field (a string or small message), counted against the budget. Valid until the next read. */
  bytes(field: ProtoField): Promise<Buffer> {
    return this.w.take(field.start, field.length, `field ${field.number}`);
  }

  /** Whether the window holds the `length` bytes at `pos` (what heldField and heldBytes need). */
  holds(pos: number, length: number): boolean {
    return this.w.holds(pos, length) >= 0;
  }

  /** bytes() without a promise when the window holds them; undefined otherwise, nothing counted. */
  heldBytes(field: ProtoField): Buffer | undefined {
    return this.w.heldTake(field.start, field.length);
  }

  /** The varints packed in a WIRE_LEN field, or the one value of a WIRE_VARINT field. */
  async packedVarints(field: ProtoField): Promise<number[]> {
    if (field.wire === WIRE_VARINT) return [field.value];
    check(field.wire === WIRE_LEN, "E_CORRUPT", `${this.what}: field ${field.number} is not a varint`);
    const out: number[] = [];
    const end = field.start + field.length;
    for (let pos = field.start; pos < end; ) {
      const v = this.heldVarint(pos, end) ?? (await this.varint(pos, end));
      out.push(v.value);
      pos = v.next;
    }
    return out;
  }
}
