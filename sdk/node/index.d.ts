// Types of sluice-sdk's public API (index.js; index.mjs re-exports the same names).
/// <reference types="node" />

/** The frame protocol version this SDK speaks. */
export declare const PROTOCOL_VERSION: number;
/** The largest frame body either side accepts, in bytes. */
export declare const MAX_FRAME_BYTES: number;
/** This SDK's version: sluice's own (the project() version of its CMakeLists.txt). */
export declare const VERSION: string;
/** Sent to sluice in Hello: `sluice-node/<VERSION>`. */
export declare const SDK_NAME: string;

/** A CloudEvents extension attribute. */
export interface Extension { name: string; value: string; }
/** A broker header. */
export interface Header { name: string; value: Uint8Array; }

/** The CloudEvents envelope sluice delivers (schemas/event.proto), in camelCase. */
export interface Event {
  id: string;
  source: string;
  specVersion: string;
  type: string;
  dataContentType: string;
  dataSchema: string;
  subject: string;
  /** RFC 3339, as received (empty when absent). */
  time: string;
  extensions: Extension[];
  data: Buffer;
  broker: string;
  topic: string;
  partition: number;
  offset: number;
  key: Buffer;
  headers: Header[];
  brokerTimestampMs: number;
  /** 1 on the first delivery. */
  attempt: number;
  firstAttemptTimeMs: number;
}

/** An event to emit, as newEvent() builds it. */
export interface EmittedEvent {
  id: string;
  source?: string;
  specVersion: string;
  type: string;
  dataContentType?: string;
  subject?: string;
  extensions?: Extension[];
  data: Uint8Array;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface EventOptions {
  type?: string;
  id?: string;
  source?: string;
  subject?: string;
  contentType?: string;
  extensions?: Record<string, string | number | boolean>;
}

/** Per-invocation context: its id, deadline, cancellation, logging and emitting. */
export declare class Context {
  /** The invocation id: a Long (long.js, as protobufjs decodes uint64), made when first read. */
  readonly id: unknown;
  /** The function's name, as sluice configured it. */
  readonly function: string;
  readonly timeoutMs: number;
  /** Milliseconds since the epoch; null when unlimited. */
  readonly deadline: number | null;
  /** True once sluice cancels the invocation (its timeout passed). */
  readonly cancelled: boolean;
  readonly emitted: EmittedEvent[];
  /** Aborted when sluice cancels the invocation. */
  readonly signal: AbortSignal;
  log(message: unknown, level?: LogLevel): void;
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
  /** Publish one more event to the function's output when this invocation succeeds. */
  emit(data: string | Uint8Array, options: EventOptions & { type: string }): EmittedEvent;
}

/** Throw to fail permanently: the event goes straight to the dead-letter queue. */
export declare class Reject extends Error {
  constructor(message?: string);
}

/** Throw to fail with a hint for the next attempt's delay. */
export declare class Retry extends Error {
  constructor(message?: string, options?: { afterMs?: number });
  afterMs: number;
}

/** An explicit result: output bytes, its content type, and events to emit. */
export declare class Response {
  constructor(output?: string | Uint8Array | null,
              options?: { contentType?: string; emit?: EmittedEvent[] });
  output: string | Uint8Array | null | undefined;
  contentType: string;
  emit: EmittedEvent[];
}

/**
 * What a handler returns: a Buffer/Uint8Array (no content type), a string
 * (text/plain), null/undefined (empty), a Response, or any other JSON-able value.
 */
export type Output = unknown;

export type Handler = (event: Event, ctx: Context) => Output | Promise<Output>;

export interface RunOptions {
  /** Told to sluice: at most this many invocations in flight (0 = no limit). */
  maxInflight?: number;
}

/** Serves `handler` on stdin/stdout, then exits (0 after Goodbye, 2 on a protocol error). */
export declare function run(handler: Handler, options?: RunOptions): void;

/** Builds an event to emit: id defaults to a random UUID, spec version 1.0. */
export declare function newEvent(data: string | Uint8Array,
                                 options: EventOptions & { type: string }): EmittedEvent;

/** A frame that breaks protocol v1. */
export declare class ProtocolError extends Error {
  constructor(message: string);
}

/** A decoded frame (protobufjs message of sluice.v1.Frame; `kind` names the oneof). */
export interface Frame {
  kind?: string;
  [field: string]: unknown;
}

/** protobufjs types of sluice.v1.Frame and sluice.v1.Event, for tests and tools. */
export declare const Frame: { encode(message: object): { finish(): Uint8Array }; decode(body: Uint8Array): Frame };
export declare const Event: { encode(message: object): { finish(): Uint8Array }; decode(body: Uint8Array): object };
/** sluice.v1.Result.Status values by name. */
export declare const Status: Readonly<Record<'OK' | 'ERROR' | 'REJECTED' | string, number>>;
/** sluice.v1.Log.Level values by name. */
export declare const Level: Readonly<Record<'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | string, number>>;

/** A 4-byte big-endian length, then the encoded Frame. */
export declare function encodeFrame(frame: object): Buffer;
export declare function decodeFrame(body: Uint8Array): Frame;
/** Splits a complete byte string into frames. */
export declare function readFrames(data: Uint8Array): Frame[];

/** Splits a byte stream that arrives in chunks into frames. */
export declare class FrameReader {
  push(chunk: Buffer): Frame[];
  /** Throws ProtocolError if the stream stopped inside a frame. */
  end(): void;
}

/** Serves one handler over a frame stream (run() wires it to stdin/stdout). */
export declare class Worker {
  constructor(handler: Handler, options: {
    maxInflight?: number;
    write: (data: Buffer) => void;
    done: (code: number) => void;
    stderr?: NodeJS.WritableStream;
    trackContext?: boolean;
  });
  start(input: NodeJS.ReadableStream): void;
}
