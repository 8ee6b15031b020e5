// Reads back the nodes of an ONNX model the project wrote (op type, inputs and
// integer-list attributes), with just the fields of onnx.proto tests look at.
import protobuf from "protobufjs";

const ModelProto = protobuf.Root.fromJSON({
  nested: {
    ModelProto: { fields: { graph: { type: "GraphProto", id: 7 } } },
    GraphProto: { fields: { node: { rule: "repeated", type: "NodeProto", id: 1 } } },
    NodeProto: {
      fields: {
        input: { rule: "repeated", type: "string", id: 1 },
        opType: { type: "string", id: 4 },
        attribute: { rule: "repeated", type: "AttributeProto", id: 5 },
      },
    },
    AttributeProto: {
      fields: { name: { type: "string", id: 1 }, s: { type: "bytes", id: 4 }, ints: { rule: "repeated", type: "int64", id: 8 } },
    },
  },
}).lookupType("ModelProto");

export interface OnnxNode {
  opType: string;
  input: string[];
  /** INTS attributes as numbers, STRING attributes as text, by name. */
  attributes: Record<string, number[] | string>;
}

export function onnxNodes(bytes: Uint8Array): OnnxNode[] {
  const model = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, bytes: String, defaults: true }) as {
    graph: { node: { input: string[]; opType: string; attribute: { name: string; s: string; ints: number[] }[] }[] };
  };
  return model.graph.node.map((n) => ({
    opType: n.opType,
    input: n.input,
    attributes: Object.fromEntries(
      n.attribute.map((a) => [a.name, a.ints.length > 0 ? a.ints : Buffer.from(a.s, "base64").toString("utf8")]),
    ),
  }));
}
