// Length-prefixed frames of Thrift compact-protocol structs, with a hard size cap.
//
// A frame is a 4-byte big-endian length followed by exactly that many payload bytes. On the
// control socket each SOCK_SEQPACKET packet is exactly one frame, so the prefix is checked
// against the packet size rather than trusted.
import thrift from 'thrift';
import { withCompactVarintReads } from './compact-varint.js';
import { CompactWriter } from './compact-writer.js';
import { ProtocolError } from './errors.js';

/** Anything the Thrift generator emits: a struct or union that reads and writes itself. */
export interface ThriftStruct {
  read(input: thrift.TProtocol): void;
  write(output: thrift.TProtocol): void;
}

/** A generated struct class, and the name to use in error messages (the generator's classes are anonymous). */
export type ThriftStructClass<T extends ThriftStruct> = new () => T;

export const FRAME_HEADER_BYTES = 4;

/**
 * Serialises one struct as a frame; throws ProtocolError('too-large') past maxBytes of payload.
 * The compact protocol's bytes come from CompactWriter (protocol/compact-writer.ts): those of
 * thrift's TCompactProtocol, without its `new Buffer()` per value, and with doubles exact.
 */
export function encodeFrame(message: ThriftStruct, maxBytes: number): Buffer {
  const writer = new CompactWriter();
  message.write(writer.asProtocol());
  const payload = writer.bytes();
  if (payload.length > maxBytes) {
    throw new ProtocolError('too-large', `frame of ${payload.length} bytes exceeds the ${maxBytes}-byte limit`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/** Reads the declared payload length of a frame header; throws if it exceeds maxBytes. */
export function frameLength(header: Buffer, maxBytes: number): number {
  const declared = header.readUInt32BE(0);
  if (declared > maxBytes) {
    throw new ProtocolError('too-large', `frame header claims ${declared} bytes; the limit is ${maxBytes}`);
  }
  return declared;
}

/** Decodes a whole frame (header and payload, nothing else) into a new T. */
export function decodeFrame<T extends ThriftStruct>(
  frame: Buffer,
  Type: ThriftStructClass<T>,
  typeName: string,
  maxBytes: number,
): T {
  if (frame.length < FRAME_HEADER_BYTES) {
    throw new ProtocolError('truncated', `frame of ${frame.length} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header`);
  }
  const declared = frameLength(frame, maxBytes);
  const actual = frame.length - FRAME_HEADER_BYTES;
  if (declared !== actual) {
    throw new ProtocolError(
      declared > actual ? 'truncated' : 'length-mismatch',
      `frame header claims ${declared} bytes but ${actual} followed`,
    );
  }
  return decodePayload(frame.subarray(FRAME_HEADER_BYTES), Type, typeName);
}

/** Decodes exactly one T from payload; every byte must belong to it. */
export function decodePayload<T extends ThriftStruct>(payload: Buffer, Type: ThriftStructClass<T>, typeName: string): T {
  const transport = new thrift.TFramedTransport(payload);
  const protocol = withCompactVarintReads(new thrift.TCompactProtocol(transport), transport);
  const message = new Type();
  try {
    message.read(protocol);
  } catch (err) {
    // The transport's read position is where decoding stopped.
    const at = (transport as unknown as { readPos: number }).readPos;
    const what =
      err instanceof RangeError
        ? 'nesting too deep'
        : err instanceof Error && err.message
          ? err.message
          : ((err as object)?.constructor?.name ?? String(err));
    throw new ProtocolError('undecodable', `${typeName} does not decode at offset ${at} of ${payload.length}: ${what}`, {
      cause: err,
    });
  }
  const consumed = (transport as unknown as { readPos: number }).readPos;
  if (consumed !== payload.length) {
    throw new ProtocolError('trailing-bytes', `${payload.length - consumed} bytes follow the ${typeName} that ended at offset ${consumed}`);
  }
  return message;
}
