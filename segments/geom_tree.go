package segments

import "math/rand/v2"

// status is the sweep's ordered set of the edges crossing the sweep line,
// bottom to top: a treap whose nodes know their parents, so that an edge is
// removed, and its neighbours found, from its node alone. Node i holds edge
// i; links are indices (noEdge is -1), so the nodes hold no pointers for the
// garbage collector to follow. Random priorities keep it balanced whatever
// order a publisher's edges come in.
type status struct {
	root  int32
	nodes []tnode
}

type tnode struct {
	left, right, parent int32
	prio                uint32
}

// noEdge is no edge: a link to no node, the edge below the lowest.
const noEdge = -1

func newStatus(n int) status {
	return status{root: noEdge, nodes: make([]tnode, n)}
}

// insert puts edge i where above says: above(e) reports whether i belongs
// above the edge e already in the set.
func (t *status) insert(i int32, above func(e int32) bool) {
	nodes := t.nodes
	n := &nodes[i]
	*n = tnode{left: noEdge, right: noEdge, parent: noEdge, prio: rand.Uint32()}
	right := false
	for cur := t.root; cur != noEdge; {
		n.parent = cur
		if right = above(cur); right {
			cur = nodes[cur].right
		} else {
			cur = nodes[cur].left
		}
	}
	switch {
	case n.parent == noEdge:
		t.root = i
	case right:
		nodes[n.parent].right = i
	default:
		nodes[n.parent].left = i
	}
	for n.parent != noEdge && n.prio > nodes[n.parent].prio {
		t.rotateUp(i)
	}
}

// remove takes edge i out of the set.
func (t *status) remove(i int32) {
	nodes := t.nodes
	n := &nodes[i]
	for n.left != noEdge || n.right != noEdge {
		c := n.left
		if c == noEdge || (n.right != noEdge && nodes[n.right].prio > nodes[c].prio) {
			c = n.right
		}
		t.rotateUp(c)
	}
	switch p := n.parent; {
	case p == noEdge:
		t.root = noEdge
	case nodes[p].left == i:
		nodes[p].left = noEdge
	default:
		nodes[p].right = noEdge
	}
	n.parent = noEdge
}

// rotateUp lifts x above its parent, keeping the order.
func (t *status) rotateUp(x int32) {
	nodes := t.nodes
	nx := &nodes[x]
	p := nx.parent
	np := &nodes[p]
	g := np.parent
	if np.left == x {
		np.left = nx.right
		if nx.right != noEdge {
			nodes[nx.right].parent = p
		}
		nx.right = p
	} else {
		np.right = nx.left
		if nx.left != noEdge {
			nodes[nx.left].parent = p
		}
		nx.left = p
	}
	np.parent, nx.parent = x, g
	switch {
	case g == noEdge:
		t.root = x
	case nodes[g].left == p:
		nodes[g].left = x
	default:
		nodes[g].right = x
	}
}

// first is the lowest edge that is not below, given that the edges below
// come first; noEdge if all are.
func (t *status) first(below func(e int32) bool) int32 {
	found := int32(noEdge)
	for cur := t.root; cur != noEdge; {
		if below(cur) {
			cur = t.nodes[cur].right
		} else {
			found, cur = cur, t.nodes[cur].left
		}
	}
	return found
}

// last is the highest edge, noEdge for an empty set.
func (t *status) last() int32 {
	i := t.root
	for i != noEdge && t.nodes[i].right != noEdge {
		i = t.nodes[i].right
	}
	return i
}

// next is the edge right above i, noEdge for the highest.
func (t *status) next(i int32) int32 {
	nodes := t.nodes
	if r := nodes[i].right; r != noEdge {
		for i = r; nodes[i].left != noEdge; i = nodes[i].left {
		}
		return i
	}
	for nodes[i].parent != noEdge && nodes[nodes[i].parent].right == i {
		i = nodes[i].parent
	}
	return nodes[i].parent
}

// prev is the edge right below i, noEdge for the lowest.
func (t *status) prev(i int32) int32 {
	nodes := t.nodes
	if l := nodes[i].left; l != noEdge {
		for i = l; nodes[i].right != noEdge; i = nodes[i].right {
		}
		return i
	}
	for nodes[i].parent != noEdge && nodes[nodes[i].parent].left == i {
		i = nodes[i].parent
	}
	return nodes[i].parent
}
