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
    /// For an object member, where its key starts (errors about the key point there).
    public var keyLocation: SourceLocation?

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

    /// "the string 'abc'", "the number 2.5": what a type error shows of the offending value.
    public var found: String {
        switch value {
        case .string(let s): "a string ('\(s.count > 40 ? String(s.prefix(40)) + "..." : s)')"
        case .double(let d): "a number (\(d))"
        case .int(let i): "an integer (\(i))"
        case .bool(let b): "\(b)"
        default: typeName
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
