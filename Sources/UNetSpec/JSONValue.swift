/// A parsed JSON value with the JSON path and source position of every node, so later stages can point at it.
public struct JSONNode: Sendable {
    public indirect enum Value: Sendable {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string(String)
        case array([JSONNode])
        /// Members in source order (json-c keeps key order).
        case object([(key: String, node: JSONNode)])
    }

    public var value: Value
    /// JSON path such as `$.blocks.DoubleConv.body[0]`.
    public var path: String
    public var location: SourceLocation?

    public init(value: Value, path: String, location: SourceLocation?) {
        self.value = value
        self.path = path
        self.location = location
    }

    /// Human name of the value's JSON type, for "expected X, found Y" messages.
    public var typeName: String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public var members: [(key: String, node: JSONNode)]? {
        if case .object(let m) = value { return m }
        return nil
    }

    public var elements: [JSONNode]? {
        if case .array(let a) = value { return a }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = value { return s }
        return nil
    }

    public subscript(key: String) -> JSONNode? {
        members?.first { $0.key == key }?.node
    }
}
