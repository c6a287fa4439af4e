/**
 * cilium-ts eBPF library: a generic loader for clang-compiled BPF objects, talking to the kernel
 * through bpf(2) only. Knows nothing about Cilium. The only public entry point of src/ebpf.
 */
export { Btf, BtfKind, type BtfType, parseBtfExt } from './btf/btf.js';
export { BtfHandle, BtfLoadError } from './btf/handle.js';
export { Collection, type CollectionOptions } from './collection.js';
export {
  CollectionSpec,
  type ConstantValue,
  encodeConstant,
  type MapSpec,
  type ProgramSpec,
  type VariableSpec,
} from './collection-spec.js';
export { ElfFile } from './elf/reader.js';
export {
  BpfSyscallError,
  EbpfError,
  ElfError,
  KeyExistsError,
  KeyNotFoundError,
  MapIncompatibleError,
  NotSupportedError,
  VerifierError,
} from './errors.js';
export { Fd, openFdCount } from './fd.js';
export { haveTcx, Link, type LinkInfo, listLinkIds, queryTcx, type TcxAnchor } from './link/link.js';
export { ifindexOf, withNetns } from './link/netns.js';
export { BatchUpdateError, BpfMap, type Codec, mapInfo, numPossibleCpus, TypedMap } from './map.js';
export { Program, programInfo, type TestRunResult } from './program.js';
export { RingBufReader } from './ringbuf.js';
export { sectionDef } from './sections.js';
export { AttachType, Cmd, LinkType, MapFlag, MapType, ProgType, UpdateFlag } from './sys/constants.js';
export { Errno, errnoName } from './sys/errno.js';
