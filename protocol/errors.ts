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
  readonly code = 'ERR_ZYGOTE_PROTOCOL';
  constructor(
    readonly reason: ProtocolErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A bad option at a public boundary (an unknown key, a wrong type, a value out of range): a
 * TypeError whose message names the option, what it must be and what it was, with Node's code
 * for a bad argument value.
 */
export class InvalidOptionError extends TypeError {
  // On the prototype, not the instance: the error still compares equal to a plain TypeError
  // with the same message (code that expected one keeps working).
  get code(): 'ERR_INVALID_ARG_VALUE' {
    return 'ERR_INVALID_ARG_VALUE';
  }
}
