/** A DesiredCellState as the wire message (proto/sibyl/v1/deployment.proto CellState), ready for protobuf-es toJson. */
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { CellStateSchema, type CellState } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import type { DesiredCellState } from './metadata-types.ts';

export function cellStateMessage(state: DesiredCellState): CellState {
  return create(CellStateSchema, {
    cell: state.cell,
    revision: BigInt(state.revision),
    updated: timestampFromDate(state.updated),
    models: state.models.map((m) => ({
      name: m.name,
      defaultVersion: m.defaultVersion,
      aliases: { ...m.aliases },
      versions: m.versions.map((v) => ({ ...v, sizeBytes: BigInt(v.sizeBytes) })),
      split: m.split.map((a) => ({ ...a })),
      shadows: m.shadows.map((t) => ({ ...t })),
    })),
  });
}
