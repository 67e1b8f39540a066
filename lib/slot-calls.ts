// How the native side calls a callback that TS keeps in a slot array
// ([fn0, data0, fn1, data1, ...] of an Easy, or [fn, data] of a
// CLOSESOCKETFUNCTION hook). The native side passes the array and the
// function's index, and these read the function and its data: an element
// read here is a few instructions once V8 has compiled it, where
// napi_get_element costs hundreds, and callbacks run once per connection or
// per chunk. One function per argument count, so the user's function gets
// exactly its own arguments with the data last.

type SlotFunction = (...args: unknown[]) => unknown;

export function callSlot1(slots: unknown[], index: number, a: unknown): unknown {
  return (slots[index] as SlotFunction)(a, slots[index + 1]);
}

export function callSlot2(slots: unknown[], index: number, a: unknown, b: unknown): unknown {
  return (slots[index] as SlotFunction)(a, b, slots[index + 1]);
}

export function callSlot4(slots: unknown[], index: number, a: unknown, b: unknown, c: unknown, d: unknown): unknown {
  return (slots[index] as SlotFunction)(a, b, c, d, slots[index + 1]);
}

/** A Multi's SOCKETFUNCTION, whose data comes before the socket's own value. */
export function callSocketSlot(slots: unknown[], index: number, easy: unknown, fd: unknown, what: unknown, socketp: unknown): unknown {
  return (slots[index] as SlotFunction)(easy, fd, what, slots[index + 1], socketp);
}
