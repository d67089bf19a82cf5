"""Writes the corpus's generated inputs (binary, or too regular to write by hand) into
tests/corpus/files. Run it again after changing it: `python3 tests/corpus/make.py`; what it
writes is committed. Every input and the error it must give is in cases.toml."""

import gzip
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
FILES = HERE / "files"


def write(name, data):
    path = FILES / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def zigzag_varint(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def avro_header(sync):
    """An object container file's header: magic, a metadata map holding the schema, sync."""
    schema = json.dumps({"type": "record", "name": "t", "fields": [{"name": "id", "type": "long"}]}).encode()

    def avro_bytes(b):
        return zigzag_varint(len(b)) + b

    meta = zigzag_varint(1) + avro_bytes(b"avro.schema") + avro_bytes(schema) + zigzag_varint(0)
    return b"Obj\x01" + meta + sync


def main():
    rows = "".join(f"{i},name {i}\n" for i in range(1, 50))
    # Delimited text.
    write("ragged.csv", "id,name\n" + rows + "50,too,many\n")
    write("unterminated_quote.csv", 'id,name\n' + rows + '50,"never closed\n51,x\n')
    write("empty.csv", b"")
    write("one_unended_line.csv", "id,name")
    write("not_utf8.csv", b"id,name\n1,caf\xe9\n")
    write("not_gzip.csv.gz", b"\x1f\x8b\x08\x00" + b"this is not a deflate stream" * 4)
    whole = gzip.compress(("id,name\n" + rows * 200).encode())
    write("cut.csv.gz", whole[: len(whole) // 2])
    write("not_bzip2.csv.bz2", b"BZh9" + b"\x00" * 64)
    write("not_zstd.csv.zst", b"\x28\xb5\x2f\xfd" + b"\xff" * 64)
    write("ragged.tsv", "id\tname\n1\ta\n2\tb\tc\n")
    # JSON lines.
    write("not_json.jsonl", '{"id": 1}\n{"id": \n')
    write("deep.jsonl", "[" * 200_000 + "]" * 200_000 + "\n")
    write("type_change.jsonl", "".join(f'{{"id": {i}}}\n' for i in range(100)) + '{"id": "x"}\n')
    write("not_an_object.jsonl", "[1, 2, 3]\n")
    # Parquet.
    write("not_parquet.parquet", "id,name\n1,a\n")
    write("empty.parquet", b"")
    write("footer_too_long.parquet", b"PAR1" + b"\x00" * 16 + struct.pack("<I", 1 << 30) + b"PAR1")
    write("footer_garbage.parquet", b"PAR1" + b"\x00" * 16 + b"\xff" * 32 + struct.pack("<I", 32) + b"PAR1")
    write("only_magic.parquet", b"PAR1")
    # Avro.
    sync = bytes(range(16))
    header = avro_header(sync)
    write("not_avro.avro", "id\n1\n")
    write("forged_block.avro", header + zigzag_varint(1) + zigzag_varint(1 << 40) + b"\x00" * 64)
    one_row = zigzag_varint(7)
    block = zigzag_varint(1) + zigzag_varint(len(one_row)) + one_row + sync
    write("cut.avro", header + block + block[:3])
    write("bad_sync.avro", header + zigzag_varint(1) + zigzag_varint(len(one_row)) + one_row + b"\xee" * 16)
    write("negative_count.avro", header + zigzag_varint(-5) + zigzag_varint(len(one_row)) + one_row + sync)
    # Records directories.
    schema = json.dumps({"schema": "bltypes/v1", "fields": {"id": {"type": "integer"}, "name": {"type": "string"}}})
    fmt = json.dumps({"type": "delimited", "variant": "csv", "hints": {"compression": None}})
    data = "id,name\n1,a\n2,b\n"
    write("rd_no_schema/_format_delimited", fmt)
    write("rd_no_schema/data001.csv", data)
    write("rd_format_not_json/_format_delimited", "{not json")
    write("rd_format_not_json/_schema.json", schema)
    write("rd_format_not_json/data001.csv", data)
    write("rd_unknown_format/_format_orc", "")
    write("rd_unknown_format/data001.orc", data)
    write("rd_two_formats/_format_delimited", fmt)
    write("rd_two_formats/_format_parquet", "")
    write("rd_two_formats/_schema.json", schema)
    write("rd_two_formats/data001.csv", data)
    write("rd_bad_type/_format_delimited", fmt)
    write("rd_bad_type/_schema.json", json.dumps({"schema": "bltypes/v1", "fields": {"id": {"type": "complex-number"}}}))
    write("rd_bad_type/data001.csv", "id\n1\n")
    write("rd_schema_not_json/_format_delimited", fmt)
    write("rd_schema_not_json/_schema.json", "fields: id")
    write("rd_schema_not_json/data001.csv", data)
    write("rd_unknown_hint/_format_delimited", json.dumps({"variant": "csv", "hints": {"sparkle": True}}))
    write("rd_unknown_hint/_schema.json", schema)
    write("rd_unknown_hint/data001.csv", data)
    write("rd_bad_variant/_format_delimited", json.dumps({"variant": "excel", "hints": {}}))
    write("rd_bad_variant/_schema.json", schema)
    write("rd_bad_variant/data001.csv", data)
    elsewhere = {"entries": [{"url": "file:///etc/passwd"}, {"url": "s3://other/../../secret.csv"}]}
    write("rd_manifest_elsewhere/_format_delimited", fmt)
    write("rd_manifest_elsewhere/_schema.json", schema)
    write("rd_manifest_elsewhere/_manifest", json.dumps(elsewhere))
    write("rd_manifest_elsewhere/data001.csv", data)
    write("rd_manifest_missing/_format_delimited", fmt)
    write("rd_manifest_missing/_schema.json", schema)
    write("rd_manifest_missing/_manifest", json.dumps({"entries": [{"url": "s3://b/rd_manifest_missing/data002.csv"}]}))
    write("rd_manifest_missing/data001.csv", data)
    write("rd_manifest_not_json/_format_delimited", fmt)
    write("rd_manifest_not_json/_schema.json", schema)
    write("rd_manifest_not_json/_manifest", "entries")
    write("rd_manifest_not_json/data001.csv", data)
    write("rd_no_data/_format_parquet", "")
    write("rd_ragged/_format_delimited", fmt)
    write("rd_ragged/_schema.json", schema)
    write("rd_ragged/data001.csv", data + "3,c,d\n")
    # A good file, for the cases whose input is an option or a name, not the file.
    write("good.csv", data)


if __name__ == "__main__":
    main()
