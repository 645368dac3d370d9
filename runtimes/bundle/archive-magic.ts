/** Nested archives inside a bundle, recognised by name and by their first bytes. */

const ARCHIVE_EXTENSIONS = /\.(zip|jar|war|ear|apk|whl|egg|nupkg|tar|tgz|tbz2?|txz|gz|bz2|xz|zst|7z|rar|lz|lz4|lzma|z|cab|iso|cpio|ar|deb|rpm)$/i;

/** True when the name ends with the extension of an archive or compressed-file format. */
export function isArchiveName(name: string): boolean {
  return ARCHIVE_EXTENSIONS.test(name);
}

/** Bytes to look at for `isArchiveHead` (tar's magic sits at offset 257). */
export const ARCHIVE_HEAD_BYTES = 262;

const MAGIC: readonly (readonly number[])[] = [
  [0x50, 0x4b, 0x03, 0x04], // zip, jar, whl, apk
  [0x50, 0x4b, 0x05, 0x06], // empty zip
  [0x50, 0x4b, 0x07, 0x08], // spanned zip
  [0x1f, 0x8b], // gzip
  [0x1f, 0x9d], // compress (.Z)
  [0x42, 0x5a, 0x68], // bzip2
  [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
  [0x28, 0xb5, 0x2f, 0xfd], // zstd
  [0x04, 0x22, 0x4d, 0x18], // lz4 frame
  [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], // 7z
  [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07], // rar
  [0x4d, 0x53, 0x43, 0x46], // cab
  [0x21, 0x3c, 0x61, 0x72, 0x63, 0x68, 0x3e], // ar, deb ("!<arch>")
  [0x30, 0x37, 0x30, 0x37, 0x30], // cpio ("07070")
];

/** True when `head` (the first up to ARCHIVE_HEAD_BYTES bytes of a file, or all of a shorter file) starts an archive. */
export function isArchiveHead(head: Uint8Array): boolean {
  if (MAGIC.some((m) => head.length >= m.length && m.every((b, i) => head[i] === b))) return true;
  // tar: "ustar" at offset 257.
  return head.length >= ARCHIVE_HEAD_BYTES && Buffer.from(head.buffer, head.byteOffset + 257, 5).toString('latin1') === 'ustar';
}
