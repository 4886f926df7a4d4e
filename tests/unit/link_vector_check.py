"""Checks tests/vectors/link/frames.json against device/link. Runs under CPython (imported
by test_link_vectors.py) and MicroPython (as a script: `micropython link_vector_check.py REPO`),
so it keeps to their common subset. Prints one line per problem, then `checked N problems M`."""
import json
import sys


def check(repo):
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from device.link import frame as fr
    from device.link.endpoint import LinkEndpoint

    with open(repo + "/tests/vectors/link/frames.json") as f:
        v = json.load(f)
    problems = []
    checked = 0
    p = fr.Pairing(v["pod_id"], bytes.fromhex(v["secret"]))
    if p.link_id.hex() != v["link_id"]:
        problems.append("link_id")
    for d, code in (("P", fr.POD_TO_CAMERA), ("C", fr.CAMERA_TO_POD)):
        if p._enc[code].hex() != v["keys"][d]["enc"] or p._mac[code].hex() != v["keys"][d]["mac"]:
            problems.append("keys " + d)
    for item in v["frames"]:
        checked += 1
        code = fr.POD_TO_CAMERA if item["direction"] == "P" else fr.CAMERA_TO_POD
        body = fr.encode_body(item["type"], item["echo"], tuple(item["fields"]))
        if body.hex() != item["body"]:
            problems.append(item["name"] + ": body")
        if p.seal(code, item["counter"], body).hex() != item["frame"]:
            problems.append(item["name"] + ": sealed frame")
        data = bytes.fromhex(item["frame"])
        fr.header(data, code)
        counter, opened = p.open(code, data)
        kind, echo, fields = fr.decode_body(opened, code)
        if (counter, kind, echo, list(fields)) != (item["counter"], item["type"], item["echo"], item["fields"]):
            problems.append(item["name"] + ": opened")

    class Never:
        next_value = 1 << 62

    for item in v["rejects"]:
        checked += 1
        end = LinkEndpoint(p, item["receiver"], Never())
        end.peer_counter = item.get("peer_counter", 0)
        try:
            end.open(bytes.fromhex(item["frame"]), 0)
            got = "accepted"
        except fr.LinkReject as exc:
            got = exc.reason
        if got != item["reason"]:
            problems.append("%s: %s, expected %s" % (item["name"], got, item["reason"]))
    for line in problems:
        print(line)
    print("checked %d problems %d" % (checked, len(problems)))
    return checked, problems


if __name__ == "__main__":
    check(sys.argv[1])
