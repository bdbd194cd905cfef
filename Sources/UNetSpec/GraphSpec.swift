/// The graph file as written: typed, but with blocks not yet expanded and shapes not yet known.
public struct GraphSpec: Sendable {
    public var file: String
    public var version: Int
    public var name: String
    public var description: String?
    public var inputs: [InputSpec]
    public var blocks: [String: BlockSpec]
    /// Block names in source order, for listings and "did you mean".
    public var blockOrder: [String]
    public var nodes: [StepSpec]
    public var unet: UNetFormSpec?
    public var outputs: [OutputSpec]
}

/// A graph input with its fixed shape and optional role (image, timestep, context, mask, condition).
public struct InputSpec: Sendable {
    public var name: String
    public var shape: [Int64]
    public var role: String?
    public var source: JSONNode
}

/// A named graph output bound to a value.
public struct OutputSpec: Sendable {
    public var name: String
    public var value: String
    public var source: JSONNode
}

/// A reusable, parameterised block.
public struct BlockSpec: Sendable {
    public struct Parameter: Sendable {
        public var name: String
        /// nil when the parameter is required.
        public var defaultValue: JSONNode?
    }

    public var name: String
    public var parameters: [Parameter]
    public var inputs: [String]
    public var body: [StepSpec]
    public var output: String?
    public var source: JSONNode
}

/// One step of a body, node list, stem, head or level: an operator or a block instance.
public struct StepSpec: Sendable {
    public enum Kind: Sendable {
        case op(String)
        case block(String)
    }

    /// How a step in a ModularUNet level touches the skip stack.
    public enum SkipMark: Sendable {
        /// `"skip": true` (encoder side: push) or no name.
        case anonymous
        /// `"skip": "name"`.
        case named(String)
        /// `"skip": null` (decoder side: drop the skip).
        case drop
    }

    public var name: String?
    public var kind: Kind
    public var kindSource: JSONNode
    /// Explicit inputs (`in`); nil means "the previous step's output".
    public var inputs: [String]?
    public var inputsSource: JSONNode?
    public var when: JSONNode?
    public var skip: SkipMark?
    public var merge: String?
    /// Operator attributes or block parameters, in source order.
    public var attributes: [(key: String, node: JSONNode)]
    public var source: JSONNode

    public func attribute(_ key: String) -> JSONNode? {
        attributes.first { $0.key == key }?.node
    }
}

/// The ModularUNet form: stem, encoders returning `(x, skip)`, optional connector, decoders consuming skips, head.
public struct UNetFormSpec: Sendable {
    public var input: String
    public var inputSource: JSONNode
    public var stem: [StepSpec]
    public var encoders: [LevelSpec]
    public var connector: LevelSpec?
    public var decoders: [LevelSpec]
    public var head: [StepSpec]
    public var source: JSONNode
}

/// One encoder, connector or decoder level.
public struct LevelSpec: Sendable {
    public enum Form: Sendable {
        /// `{"block": B, params..., "down"/"up"/"gate"/"merge"/"skip"}`.
        case short(ShortLevel)
        /// `{"steps": [...]}`.
        case steps([StepSpec])
    }

    public struct ShortLevel: Sendable {
        /// The block instance (parameters as attributes); nil for a level that only resamples.
        public var block: StepSpec?
        public var down: StepSpec?
        public var up: StepSpec?
        public var gate: StepSpec?
        public var merge: String
        public var mergeSource: JSONNode?
        /// nil: take the next skip; `.drop`: discard it; `.named`: take or push that skip.
        public var skip: StepSpec.SkipMark?
    }

    public var form: Form
    public var path: String?
    public var source: JSONNode
}
