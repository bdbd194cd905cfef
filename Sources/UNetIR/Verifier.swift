/// Checks the invariants every later stage relies on; a failure here is a compiler bug, not a user error.
public enum Verifier {
    /// Problems found, empty when the graph is well formed.
    public static func verify(_ graph: Graph) -> [String] {
        var problems: [String] = []
        var names = Set<String>()
        for (i, node) in graph.nodes.enumerated() {
            if node.id != i { problems.append("node '\(node.name)' has id \(node.id) at position \(i)") }
            if !names.insert(node.name).inserted { problems.append("two nodes are named '\(node.name)'") }
            for input in node.inputs where input < 0 || input >= i {
                problems.append("node '\(node.name)' reads node \(input), which is not an earlier node")
            }
            guard node.inputs.allSatisfy({ $0 >= 0 && $0 < i }) else { continue }
            if case .input = node.op { continue }
            do {
                let shape = try OpSemantics.outputShape(of: node.op, inputs: node.inputs.map { graph.nodes[$0].shape })
                if shape != node.shape {
                    problems.append("node '\(node.name)' records shape \(OpSemantics.describe(node.shape)) but infers \(OpSemantics.describe(shape))")
                }
            } catch {
                problems.append("node '\(node.name)': \(error.message)")
            }
        }
        for (name, id) in graph.outputs where id < 0 || id >= graph.nodes.count {
            problems.append("output '\(name)' names missing node \(id)")
        }
        return problems
    }
}
