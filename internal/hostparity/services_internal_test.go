package hostparity

import (
	"reflect"
	"strings"
	"testing"
)

// Outputs as the real tools print them (Debian 12: apache2 2.4.57, nginx
// 1.22.1, PHP 8.2), wrapped in CollectInventory's sections.
const invOld = `@@apache
path /usr/sbin/apache2ctl
version Apache/2.4.57 (Debian)
Loaded Modules:
 core_module (static)
 so_module (static)
 rewrite_module (shared)
 headers_module (shared)
 php_module (shared)
@@nginx
path /usr/sbin/nginx
nginx version: nginx/1.22.1
built with OpenSSL 3.0.9 30 May 2023 (running with OpenSSL 3.0.11 19 Sep 2023)
TLS SNI support enabled
configure arguments: --with-cc-opt='-g -O2' --prefix=/usr/share/nginx --with-http_ssl_module --with-http_v2_module --with-http_realip_module --add-dynamic-module=/build/nginx/debian/modules/http-geoip2
load_module modules/ngx_http_geoip2_module.so;
@@php
path /usr/bin/php
version 8.2.7
[PHP Modules]
Core
mbstring
mysqli
pdo_mysql
redis

[Zend Modules]
Zend OPcache
@@listen
LISTEN 0      511          0.0.0.0:80        0.0.0.0:*    users:(("nginx",pid=812,fd=6),("nginx",pid=811,fd=6))
LISTEN 0      80         127.0.0.1:3306      0.0.0.0:*    users:(("mariadbd",pid=700,fd=21))
LISTEN 0      511        127.0.0.1:6379      0.0.0.0:*    users:(("redis-server",pid=650,fd=6))
@@procs
/usr/sbin/nginx -g daemon on; master_process on;
php /var/www/shop/artisan queue:work --sleep=3 --tries=3
php /var/www/shop/artisan horizon
@@systemd
yes
nginx.service
shop-queue.service
@@unitfiles
shop-queue.service
multi-user.target.wants
@@supervisor
program shop-mailer
@@rc
S01ssh
S01cron
K01nginx
`

const invNew = `@@apache
@@nginx
path /usr/sbin/nginx
nginx version: nginx/1.22.1
configure arguments: --with-http_ssl_module --with-http_v2_module
@@php
path /usr/bin/php
version 8.3.1
[PHP Modules]
Core
mbstring
mysqli
@@listen
LISTEN 0      511          0.0.0.0:80        0.0.0.0:*    users:(("nginx",pid=12,fd=6))
LISTEN 0      80         127.0.0.1:3307      0.0.0.0:*    users:(("mariadbd",pid=70,fd=21))
@@procs
/usr/sbin/nginx -g daemon on; master_process on;
@@systemd
@@unitfiles
@@supervisor
@@rc
S01ssh
`

func TestParseInventory(t *testing.T) {
	inv, err := ParseInventory(invOld, DefaultRunners)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Apache == nil || inv.Apache.Version != "Apache/2.4.57 (Debian)" || !reflect.DeepEqual(inv.Apache.Modules, []string{"core_module", "headers_module", "php_module", "rewrite_module", "so_module"}) {
		t.Errorf("apache %+v", inv.Apache)
	}
	if inv.Nginx == nil || !reflect.DeepEqual(inv.Nginx.Modules, []string{"http_realip_module", "http_ssl_module", "http_v2_module", "ngx_http_geoip2_module"}) {
		t.Errorf("nginx %+v", inv.Nginx)
	}
	if inv.PHP == nil || inv.PHP.Version != "8.2.7" || !reflect.DeepEqual(inv.PHP.Modules, []string{"core", "mbstring", "mysqli", "pdo_mysql", "redis", "zend opcache"}) {
		t.Errorf("php %+v", inv.PHP)
	}
	if !reflect.DeepEqual(inv.Listen["redis-server"], []string{"127.0.0.1:6379"}) || len(inv.Listen) != 3 {
		t.Errorf("listen %v", inv.Listen)
	}
	if !reflect.DeepEqual(inv.Runners, []string{"artisan horizon", "artisan queue:work"}) {
		t.Errorf("runners %v", inv.Runners)
	}
	if !inv.Systemd || !reflect.DeepEqual(inv.Units, []string{"nginx.service", "shop-queue.service"}) || !reflect.DeepEqual(inv.UnitFiles, []string{"shop-queue.service"}) {
		t.Errorf("systemd %v %v %v", inv.Systemd, inv.Units, inv.UnitFiles)
	}
	if !reflect.DeepEqual(inv.Programs, []string{"shop-mailer"}) || !reflect.DeepEqual(inv.InitServices, []string{"cron", "ssh"}) {
		t.Errorf("programs %v init %v", inv.Programs, inv.InitServices)
	}
}

func TestCompareInventories(t *testing.T) {
	a, _ := ParseInventory(invOld, DefaultRunners)
	b, _ := ParseInventory(invNew, DefaultRunners)
	got := map[string]InvFinding{}
	for _, f := range CompareInventories(a, b, "old", "new", []string{"core"}, true) {
		got[f.Subject] = f
	}
	expect := func(subject, level string, parts ...string) {
		t.Helper()
		f, ok := got[subject]
		if !ok || f.Level != level {
			t.Errorf("%s: got %+v, want %s", subject, f, level)
			return
		}
		for _, p := range parts {
			if !strings.Contains(f.Message+" | "+f.Fix, p) {
				t.Errorf("%s: %q lacks %q", subject, f.Message+" | "+f.Fix, p)
			}
		}
	}
	expect("Apache", "fail", "installed on old but not on new", "apt-get install apache2")
	expect("nginx", "fail", "lacks 2 modules", "http_realip_module", "ngx_http_geoip2_module")
	expect("PHP version", "warn", "8.2.7", "8.3.1")
	expect("PHP extensions", "fail", "pdo_mysql", "redis", "zend opcache", "php8.3-mysql php8.3-redis php8.3-opcache")
	expect("listening services", "fail", "redis-server (127.0.0.1:6379)")
	expect("listening addresses", "warn", "mariadbd (127.0.0.1:3306 on old, 127.0.0.1:3307 on new)")
	expect("queue runners", "fail", "artisan horizon")
	expect("systemd", "warn", "not on new")
	expect("unit files", "fail", "shop-queue.service")
	expect("supervisor programs", "fail", "shop-mailer")
	expect("init services", "fail", "cron", "update-rc.d cron defaults")
	// Absent on both: a pass with a note.
	none, _ := ParseInventory("@@apache\n@@php\n", nil)
	for _, f := range CompareInventories(none, none, "old", "new", nil, false) {
		if f.Level != "pass" || !strings.Contains(f.Message, "neither host") {
			t.Errorf("absent on both: %+v", f)
		}
	}
}
