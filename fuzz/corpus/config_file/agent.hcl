datacenter = "dc1"
retry_join = ["127.0.0.1"]
service {
  name = "web"
  port = 80
  checks = [{ tcp = "127.0.0.1:80", interval = "5s" }]
}