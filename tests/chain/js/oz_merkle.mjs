// Test helper: runs a batch of operations against npm @openzeppelin/merkle-tree.
//
// stdin:  a JSON array of operations; stdout: a JSON array with one result per
// operation ({"error": message} when OZ throws). Operations:
//   {"op": "build", "values", "encoding", "sortLeaves"?, "proofIndices"?, "proofValues"?}
//       -> {"root", "dump", "proofs": [...], "valueProofs": [...]}
//   {"op": "load", "dump", "proofs": [[valueIndex, proof], ...], "proofIndices"?}
//       -> {"root", "verified": [bool, ...], "proofs": [...]}
//   {"op": "verify", "root", "encoding", "value", "proof"} -> {"result": bool}
//   {"op": "leafHash", "encoding", "value"} -> {"result": hex}
//   {"op": "processProof", "leaf", "proof"} -> {"result": hex}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');
const { standardLeafHash } = require('@openzeppelin/merkle-tree/dist/hashes');
const { processProof } = require('@openzeppelin/merkle-tree/dist/core');

function run(op) {
  switch (op.op) {
    case 'build': {
      const tree = StandardMerkleTree.of(op.values, op.encoding, {
        sortLeaves: op.sortLeaves ?? true,
      });
      return {
        root: tree.root,
        dump: tree.dump(),
        proofs: (op.proofIndices ?? []).map(i => tree.getProof(i)),
        valueProofs: (op.proofValues ?? []).map(v => tree.getProof(v)),
      };
    }
    case 'load': {
      const tree = StandardMerkleTree.load(op.dump);
      const verified = (op.proofs ?? []).map(
        ([i, proof]) =>
          tree.verify(i, proof) &&
          StandardMerkleTree.verify(tree.root, op.dump.leafEncoding, op.dump.values[i].value, proof),
      );
      return {
        root: tree.root,
        verified,
        proofs: (op.proofIndices ?? []).map(i => tree.getProof(i)),
      };
    }
    case 'verify':
      return { result: StandardMerkleTree.verify(op.root, op.encoding, op.value, op.proof) };
    case 'leafHash':
      return { result: standardLeafHash(op.encoding, op.value) };
    case 'processProof':
      return { result: processProof(op.leaf, op.proof) };
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

const ops = JSON.parse(readFileSync(0, 'utf8'));
const results = ops.map(op => {
  try {
    return run(op);
  } catch (err) {
    return { error: String(err?.message ?? err) };
  }
});
process.stdout.write(JSON.stringify(results));
