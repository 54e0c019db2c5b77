package hosts

// CutLink closes the TCP connection under s without telling the SSH layer,
// as a network failure would.
func CutLink(s *SSH) { s.conn.Close() }
