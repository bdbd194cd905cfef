/// "Did you mean" support: the candidate closest to a misspelt name by edit distance.
public enum NearestName {
    /// The candidate with the smallest Levenshtein distance to `name`, if it is close enough to be a plausible typo.
    public static func find(_ name: String, in candidates: [String]) -> String? {
        let source = Array(name.lowercased())
        var best: (String, Int)?
        for candidate in candidates {
            let d = distance(source, Array(candidate.lowercased()))
            // Equal distance: the candidate of the closer length reads as the likelier typo.
            if let current = best, current.1 < d || (current.1 == d && abs(current.0.count - name.count) <= abs(candidate.count - name.count)) { continue }
            best = (candidate, d)
        }
        if let prefixed = candidates.first(where: { c in
            let (a, b) = (c.lowercased(), name.lowercased())
            return min(a.count, b.count) >= 3 && (a.hasPrefix(b) || b.hasPrefix(a))
        }), best.map({ $0.1 > 2 }) ?? true {
            return prefixed
        }
        guard let (match, d) = best else { return nil }
        let allowed = max(2, min(source.count, match.count) / 3)
        return d <= allowed ? match : nil
    }

    /// A "did you mean" hint, or nil when nothing is close.
    public static func hint(_ name: String, in candidates: [String]) -> String? {
        find(name, in: candidates).map { "did you mean '\($0)'?" }
    }

    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
