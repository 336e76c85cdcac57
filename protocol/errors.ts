// The error raised for any malformed frame or message, on either side of a connection.

/** What exactly was wrong with the bytes. */
export type ProtocolErrorReason =
  | 'too-large' // the frame claims or has more bytes than allowed
  | 'truncated' // fewer bytes than the frame claims
  | 'length-mismatch' // a packet's length prefix disagrees with the packet's size
  | 'undecodable' // the Thrift payload does not decode
  | 'trailing-bytes' // bytes left over after the message
  | 'invalid' // decoded, but a required field is missing or has the wrong shape
  | 'timeout'; // a frame did not arrive in time

/** A frame or message that breaks the protocol. The message says where and why. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly reason: ProtocolErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
